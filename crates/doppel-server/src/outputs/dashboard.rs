//! The web dashboard at `/`: the files of `web/dist`, embedded in the binary at build time
//! (`build.rs` runs the Vite build), served with their content type, cache rules and, when the
//! client accepts it, the gzip variant precompressed by the build.
//!
//! `rust-embed` is what puts the files in the binary: doppel stays one file to copy and run,
//! with no web root to configure or keep in step with the server's version. Loading the page
//! needs no token; every `/api` call it makes still does.

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::Response;
use rust_embed::RustEmbed;

/// `web/dist`, or an empty folder when the dashboard was not built (see `build.rs`).
#[derive(RustEmbed)]
#[folder = "$DOPPEL_WEB_DIST"]
struct Assets;

/// Hashed build outputs: their names change with their content, so they never go stale.
const IMMUTABLE_PREFIX: &str = "assets/";

/// The page's Content-Security-Policy: only its own scripts, styles and API (including the
/// WebSocket, which `'self'` covers), no framing.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

const NOT_BUILT: &str = "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<title>doppel: dashboard not built</title></head><body style=\"font-family:sans-serif;margin:3rem\">\
<h1>dashboard not built</h1><p>This doppel binary was built without its web dashboard. \
Run <code>npm ci &amp;&amp; npm run build</code> in <code>web/</code>, then build doppel again.</p>\
<p>The HTTP API works as usual under <code>/api/v1</code>.</p></body></html>";

/// Whether the binary carries the dashboard (false when it was built with the placeholder).
pub fn is_built() -> bool {
    Assets::get("index.html").is_some()
}

/// Answers a GET or HEAD of a path outside `/api`: the embedded file at that path, else
/// `index.html` (the dashboard routes in the URL fragment, so any other path is the app).
/// A missing file under `assets/` is a 404: answering a stale script URL with HTML would only
/// break the page more confusingly.
pub fn serve(method: &Method, path: &str, headers: &HeaderMap) -> Response {
    let rel = path.trim_start_matches('/');
    let rel = if rel.is_empty() { "index.html" } else { rel };
    let (name, file) = match Assets::get(rel) {
        Some(f) if !rel.ends_with(".gz") => (rel, f),
        _ if rel.starts_with(IMMUTABLE_PREFIX) => return plain(StatusCode::NOT_FOUND, "not found"),
        _ => match Assets::get("index.html") {
            Some(f) => ("index.html", f),
            None => return not_built(method),
        },
    };
    let hash = hex::encode(&file.metadata.sha256_hash()[..12]);
    let gz = if accepts_gzip(headers) {
        Assets::get(&format!("{name}.gz"))
    } else {
        None
    };
    let etag = if gz.is_some() {
        format!("\"{hash}-gz\"")
    } else {
        format!("\"{hash}\"")
    };
    let has_variant = gz.is_some() || Assets::get(&format!("{name}.gz")).is_some();

    let mut resp = Response::builder()
        .header(header::CONTENT_TYPE, content_type(name))
        .header(header::ETAG, &etag)
        .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
        .header(
            header::CACHE_CONTROL,
            if name.starts_with(IMMUTABLE_PREFIX) {
                "public, max-age=31536000, immutable"
            } else {
                "no-cache"
            },
        );
    if has_variant {
        resp = resp.header(header::VARY, "Accept-Encoding");
    }
    if name == "index.html" {
        resp = resp
            .header(header::CONTENT_SECURITY_POLICY, CSP)
            .header(header::REFERRER_POLICY, "no-referrer");
    }
    if etag_matches(headers, &etag) {
        return resp
            .status(StatusCode::NOT_MODIFIED)
            .body(Body::empty())
            .unwrap_or_default();
    }
    let body = match &gz {
        Some(g) => {
            resp = resp.header(header::CONTENT_ENCODING, "gzip");
            g.data.clone()
        }
        None => file.data.clone(),
    };
    resp = resp.header(header::CONTENT_LENGTH, body.len());
    let body = if method == Method::HEAD {
        Body::empty()
    } else {
        Body::from(body)
    };
    resp.status(StatusCode::OK).body(body).unwrap_or_default()
}

fn content_type(name: &str) -> HeaderValue {
    let mime = mime_guess::from_path(name).first_or_octet_stream();
    let text = mime.type_() == mime_guess::mime::TEXT
        || matches!(mime.subtype().as_str(), "javascript" | "json" | "svg");
    let value = if text && mime.get_param("charset").is_none() {
        format!("{mime}; charset=utf-8")
    } else {
        mime.to_string()
    };
    HeaderValue::from_str(&value).unwrap_or(HeaderValue::from_static("application/octet-stream"))
}

/// Whether `Accept-Encoding` lists gzip (or `*`) without `q=0`.
fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|item| {
            let mut parts = item.split(';').map(str::trim);
            let coding = parts.next().unwrap_or("");
            let refused = parts.any(|p| {
                p.strip_prefix("q=")
                    .and_then(|q| q.parse::<f32>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            (coding.eq_ignore_ascii_case("gzip") || coding == "*") && !refused
        })
}

fn etag_matches(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().trim_start_matches("W/"))
        .any(|t| t == etag || t == "*")
}

fn plain(status: StatusCode, text: &'static str) -> Response {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .body(Body::from(text))
        .unwrap_or_default()
}

fn not_built(method: &Method) -> Response {
    Response::builder()
        .status(StatusCode::SERVICE_UNAVAILABLE)
        .header(header::CONTENT_TYPE, "text/html; charset=utf-8")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(if method == Method::HEAD {
            Body::empty()
        } else {
            Body::from(NOT_BUILT)
        })
        .unwrap_or_default()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn gzip_negotiation() {
        assert!(accepts_gzip(&headers(&[(
            "accept-encoding",
            "gzip, deflate, br"
        )])));
        assert!(accepts_gzip(&headers(&[(
            "accept-encoding",
            "br;q=1.0, GZIP;q=0.5"
        )])));
        assert!(accepts_gzip(&headers(&[("accept-encoding", "*")])));
        assert!(!accepts_gzip(&headers(&[("accept-encoding", "gzip;q=0")])));
        assert!(!accepts_gzip(&headers(&[("accept-encoding", "br")])));
        assert!(!accepts_gzip(&HeaderMap::new()));
    }

    #[test]
    fn content_types() {
        assert_eq!(content_type("index.html"), "text/html; charset=utf-8");
        assert_eq!(
            content_type("assets/index-x.css"),
            "text/css; charset=utf-8"
        );
        assert!(content_type("assets/index-x.js")
            .to_str()
            .unwrap()
            .ends_with("javascript; charset=utf-8"));
        assert_eq!(content_type("favicon.svg"), "image/svg+xml; charset=utf-8");
        assert_eq!(content_type("x.woff2"), "font/woff2");
    }

    #[test]
    fn etags() {
        let h = headers(&[("if-none-match", "\"a\", W/\"abc\"")]);
        assert!(etag_matches(&h, "\"abc\""));
        assert!(!etag_matches(&h, "\"abcd\""));
    }

    /// Whatever was embedded, `/` answers: the app when built, the explanation otherwise, and
    /// a missing hashed asset is a 404 rather than HTML.
    #[test]
    fn index_or_not_built() {
        let resp = serve(&Method::GET, "/", &HeaderMap::new());
        if is_built() {
            assert_eq!(resp.status(), StatusCode::OK);
            assert_eq!(resp.headers()[header::CACHE_CONTROL], "no-cache");
            assert!(resp.headers().contains_key(header::CONTENT_SECURITY_POLICY));
            let again = serve(&Method::GET, "/twins/anything", &HeaderMap::new());
            assert_eq!(again.headers()[header::ETAG], resp.headers()[header::ETAG]);
        } else {
            assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
        }
        let missing = serve(&Method::GET, "/assets/gone-123.js", &HeaderMap::new());
        assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    }
}
