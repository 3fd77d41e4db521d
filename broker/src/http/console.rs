//! The web console: a few static files embedded in the binary (plain HTML, CSS and
//! JavaScript, no build step) served at `/`, and the vendored chart library, uPlot (MIT; its
//! licence beside it in `console/vendor/`). The pages read the JSON API under `/v1/` and
//! `/metrics`; nothing here reads the broker's state.
//!
//! Every asset is a `&'static` slice: serving one copies nothing and allocates nothing.

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

const HTML: &str = "text/html; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const TEXT: &str = "text/plain; charset=utf-8";

/// Path, content type and bytes of each file.
const ASSETS: [(&str, &str, &str); 6] = [
    ("/", HTML, include_str!("console/index.html")),
    ("/console.css", CSS, include_str!("console/console.css")),
    ("/console.js", JS, include_str!("console/console.js")),
    (
        "/vendor/uPlot.min.css",
        CSS,
        include_str!("console/vendor/uPlot.min.css"),
    ),
    (
        "/vendor/uPlot.iife.min.js",
        JS,
        include_str!("console/vendor/uPlot.iife.min.js"),
    ),
    (
        "/vendor/uPlot.LICENSE",
        TEXT,
        include_str!("console/vendor/uPlot.LICENSE"),
    ),
];

/// A route per asset.
pub(super) fn router() -> Router {
    ASSETS
        .iter()
        .fold(Router::new(), |router, &(path, content_type, body)| {
            router.route(
                path,
                get(move || async move {
                    (
                        [
                            (header::CONTENT_TYPE, content_type),
                            // Small files, and a new binary may change them: revalidate.
                            (header::CACHE_CONTROL, "no-cache"),
                        ],
                        body,
                    )
                        .into_response()
                }),
            )
        })
}
