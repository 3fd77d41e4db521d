package dev.weir.compat;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A tiny runner for named checks in one JVM (a JVM start costs about a second, so the pytest
 * side runs many checks per start). Each check prints one line, {@code CHECK <name> OK <detail>}
 * or {@code CHECK <name> FAIL <message>}, on stdout; stack traces go to stderr. The pytest side
 * (tests/compat/java.py) parses those lines and turns each into one test.
 */
final class Check {
    /** A failed expectation: its message says what was expected and what came. */
    static final class Failed extends RuntimeException {
        Failed(String message) {
            super(message);
        }
    }

    @FunctionalInterface
    interface Body {
        String run() throws Exception;
    }

    private final Map<String, Body> checks = new LinkedHashMap<>();

    void add(String name, Body body) {
        checks.put(name, body);
    }

    /** Runs the checks named in {@code names} (all when empty) one after another. */
    int run(List<String> names) {
        return run(names, 1);
    }

    /**
     * Runs the checks named in {@code names} (all when empty) on {@code threads} threads at
     * once (the checks are independent: each has its own topics and groups, and most of their
     * time is spent waiting on the broker); returns how many failed.
     */
    int run(List<String> names, int threads) {
        List<String> todo = names.isEmpty() ? new ArrayList<>(checks.keySet()) : names;
        java.util.concurrent.ExecutorService pool = java.util.concurrent.Executors.newFixedThreadPool(threads);
        List<java.util.concurrent.Future<Boolean>> results = new ArrayList<>();
        for (String name : todo) {
            results.add(pool.submit(() -> runOne(name)));
        }
        int failed = 0;
        for (java.util.concurrent.Future<Boolean> r : results) {
            try {
                failed += r.get() ? 0 : 1;
            } catch (Exception e) {
                failed++;
            }
        }
        pool.shutdown();
        return failed;
    }

    private boolean runOne(String name) {
        Body body = checks.get(name);
        if (body == null) {
            report("CHECK " + name + " FAIL no such check; known: " + checks.keySet());
            return false;
        }
        long start = System.nanoTime();
        try {
            String detail = body.run();
            long ms = (System.nanoTime() - start) / 1_000_000;
            report("CHECK " + name + " OK " + ms + " ms" + (detail == null ? "" : "; " + oneLine(detail)));
            return true;
        } catch (Throwable e) {
            java.io.StringWriter trace = new java.io.StringWriter();
            e.printStackTrace(new java.io.PrintWriter(trace));
            synchronized (System.err) {
                System.err.println("----- check " + name + " failed:");
                System.err.print(trace);
                System.err.println("----- end of check " + name);
            }
            long ms = (System.nanoTime() - start) / 1_000_000;
            report("CHECK " + name + " FAIL " + oneLine(describe(e)) + " (after " + ms + " ms)");
            return false;
        }
    }

    private static synchronized void report(String line) {
        System.out.println(line);
        System.out.flush();
    }

    /** The exception with its causes, each as its class and message. */
    static String describe(Throwable e) {
        StringBuilder sb = new StringBuilder();
        for (Throwable t = e; t != null; t = t.getCause()) {
            if (sb.length() > 0) {
                sb.append(" <- caused by ");
            }
            sb.append(t.getClass().getName()).append(": ").append(t.getMessage());
            if (t.getCause() == t) {
                break;
            }
        }
        return sb.toString();
    }

    static String oneLine(String s) {
        return s.replace('\n', ' ').replace('\r', ' ');
    }

    static void expect(boolean condition, String what) {
        if (!condition) {
            throw new Failed(what);
        }
    }

    static void expectEq(Object expected, Object actual, String what) {
        if (expected == null ? actual != null : !expected.equals(actual)) {
            throw new Failed(what + ": expected " + expected + ", got " + actual);
        }
    }
}
