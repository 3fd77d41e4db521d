package dev.weir.compat;

import java.io.BufferedReader;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.Base64;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * Runs Kafka's command-line tools (their {@code main} classes, as the {@code bin/kafka-*.sh}
 * scripts do) one after another in this one JVM, so the tests pay for one JVM start instead of
 * one per command.
 *
 * <p>Protocol, over this process's stdin and stdout, one line each way per command. Request:
 * tab-separated base64 (UTF-8) fields: the main class, the text given to the tool as its stdin,
 * the timeout in milliseconds, then the tool's arguments. Answer: {@code RESULT <exit code>
 * <base64 stdout> <base64 stderr>}, the exit code being what the tool passed to Kafka's
 * {@code Exit.exit} (0 when its main returned), or {@code TIMEOUT} (and the JVM exits, since a
 * stuck tool cannot be stopped). The tools' {@code System.out}, {@code System.err} and
 * {@code System.in} are swapped for each command; {@code Exit} is redirected so that a tool's
 * exit ends only its own command.
 */
public final class ToolShell {
    /** Thrown in place of a tool's process exit. */
    static final class ExitCalled extends RuntimeException {
        final int code;

        ExitCalled(int code) {
            super("exit " + code, null, false, false);
            this.code = code;
        }
    }

    public static void main(String[] args) throws Exception {
        PrintStream channel = System.out;
        InputStream originalIn = System.in;
        BufferedReader requests = new BufferedReader(new InputStreamReader(originalIn, StandardCharsets.UTF_8));
        redirectExit();
        ExecutorService pool = Executors.newCachedThreadPool(r -> {
            Thread t = new Thread(r, "tool");
            t.setDaemon(true);
            return t;
        });
        Base64.Decoder dec = Base64.getDecoder();
        Base64.Encoder enc = Base64.getEncoder();
        String line;
        while ((line = requests.readLine()) != null) {
            if (line.isEmpty()) {
                continue;
            }
            String[] f = line.split("\t", -1);
            String[] decoded = Arrays.stream(f).map(s -> new String(dec.decode(s), StandardCharsets.UTF_8)).toArray(String[]::new);
            String mainClass = decoded[0];
            byte[] stdin = decoded[1].getBytes(StandardCharsets.UTF_8);
            long timeoutMs = Long.parseLong(decoded[2]);
            String[] toolArgs = Arrays.copyOfRange(decoded, 3, decoded.length);

            ByteArrayOutputStream out = new ByteArrayOutputStream();
            ByteArrayOutputStream err = new ByteArrayOutputStream();
            PrintStream outStream = new PrintStream(out, true, StandardCharsets.UTF_8);
            PrintStream errStream = new PrintStream(err, true, StandardCharsets.UTF_8);
            System.setOut(outStream);
            System.setErr(errStream);
            System.setIn(new ByteArrayInputStream(stdin));
            Future<Integer> result = pool.submit(() -> invoke(mainClass, toolArgs));
            String code;
            try {
                code = String.valueOf(result.get(timeoutMs, TimeUnit.MILLISECONDS));
            } catch (TimeoutException e) {
                code = "TIMEOUT";
            } catch (java.util.concurrent.ExecutionException e) {
                e.getCause().printStackTrace(errStream);
                code = "255";
            }
            outStream.flush();
            errStream.flush();
            channel.println("RESULT " + code + " " + enc.encodeToString(out.toByteArray()) + " "
                    + enc.encodeToString(withoutExitNoise(err.toString(StandardCharsets.UTF_8)).getBytes(StandardCharsets.UTF_8)));
            channel.flush();
            if (code.equals("TIMEOUT")) {
                Runtime.getRuntime().halt(3);
            }
        }
        Runtime.getRuntime().halt(0);
    }

    /**
     * Kafka's {@code Exit} (org.apache.kafka.common.utils.internals.Exit from 4.x,
     * org.apache.kafka.common.utils.Exit before): its exit and halt procedures throw
     * {@link ExitCalled} instead of ending the JVM. Reflection, so the same source builds
     * against every client version.
     */
    static void redirectExit() throws Exception {
        Class<?> exit;
        try {
            exit = Class.forName("org.apache.kafka.common.utils.internals.Exit");
        } catch (ClassNotFoundException e) {
            exit = Class.forName("org.apache.kafka.common.utils.Exit");
        }
        Class<?> procedure = Class.forName(exit.getName() + "$Procedure");
        Object thrower = java.lang.reflect.Proxy.newProxyInstance(procedure.getClassLoader(), new Class<?>[] {procedure},
                (proxy, method, args) -> {
                    if (method.getName().equals("execute")) {
                        firstExit.compareAndSet(null, (Integer) args[0]);
                        throw new ExitCalled((Integer) args[0]);
                    }
                    if (method.getName().equals("toString")) {
                        return "ToolShell exit procedure";
                    }
                    throw new UnsupportedOperationException(method.getName());
                });
        exit.getMethod("setExitProcedure", procedure).invoke(null, thrower);
        exit.getMethod("setHaltProcedure", procedure).invoke(null, thrower);
        // Shutdown hooks (ConsoleProducer closes, so flushes, its producer in one) run when
        // the command ends, as they would when its process exits.
        Class<?> hookAdder = Class.forName(exit.getName() + "$ShutdownHookAdder");
        Object adder = java.lang.reflect.Proxy.newProxyInstance(hookAdder.getClassLoader(), new Class<?>[] {hookAdder},
                (proxy, method, args) -> {
                    if (method.getName().equals("addShutdownHook")) {
                        shutdownHooks.add((Runnable) args[1]);
                        return null;
                    }
                    if (method.getName().equals("toString")) {
                        return "ToolShell shutdown hook adder";
                    }
                    throw new UnsupportedOperationException(method.getName());
                });
        exit.getMethod("setShutdownHookAdder", hookAdder).invoke(null, adder);
    }

    /** The shutdown hooks the current command registered through Kafka's {@code Exit}. */
    static final java.util.List<Runnable> shutdownHooks = new java.util.concurrent.CopyOnWriteArrayList<>();

    static void runShutdownHooks() {
        for (Runnable hook : shutdownHooks) {
            try {
                hook.run();
            } catch (RuntimeException e) {
                e.printStackTrace();
            }
        }
        shutdownHooks.clear();
    }

    /**
     * The first exit code a tool asked for during the current command. Some tools call
     * {@code Exit.exit} inside a {@code try} whose {@code catch (Throwable)} then reports the
     * {@link ExitCalled} as a failure and exits again with 1 (TopicCommand does, from its
     * {@code finally}); the process would have ended at the first call, so that one counts.
     */
    static final java.util.concurrent.atomic.AtomicReference<Integer> firstExit = new java.util.concurrent.atomic.AtomicReference<>();

    static int invoke(String mainClass, String[] args) throws Exception {
        Method main = Class.forName(mainClass).getMethod("main", String[].class);
        firstExit.set(null);
        shutdownHooks.clear();
        try {
            main.invoke(null, (Object) args);
        } catch (InvocationTargetException e) {
            if (!(e.getCause() instanceof ExitCalled)) {
                throw e;
            }
        } finally {
            runShutdownHooks();
        }
        Integer code = firstExit.get();
        return code == null ? 0 : code;
    }

    /**
     * A tool's stderr without what only this shell causes: the lines a tool's own
     * {@code catch (Throwable)} prints about an {@link ExitCalled} (its message, {@code exit N},
     * and the exception's line with its stack).
     */
    static String withoutExitNoise(String err) {
        StringBuilder out = new StringBuilder();
        boolean inTrace = false;
        for (String line : err.split("\n", -1)) {
            if (line.contains("ToolShell$ExitCalled")) {
                inTrace = true;
                continue;
            }
            if (inTrace && (line.startsWith("\tat ") || line.startsWith("\t... "))) {
                continue;
            }
            inTrace = false;
            if (line.matches("exit -?\\d+")) {
                continue;
            }
            out.append(line).append('\n');
        }
        return out.substring(0, Math.max(0, out.length() - 1));
    }
}
