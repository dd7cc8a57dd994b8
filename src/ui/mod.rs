//! The web UI: a user's mail at `/`, the operator's view at `/admin`, and their files under
//! `/ui/`. It is a client of the REST API like any other (plain JavaScript modules and CSS in
//! `assets/`, no build step); this module only serves the files, embedded in the binary.
//!
//! Every answer carries the page's strict `Content-Security-Policy` and the usual hardening
//! headers, a strong `ETag` (`If-None-Match` answers 304) and `Cache-Control: no-cache`, so a
//! browser revalidates each file and gets a new one as soon as the binary changes. A file is
//! gzipped once, the first time a client that accepts gzip asks for it, and kept.
//!
//! `--no-ui` leaves these routes out: the paths then answer the API's JSON 404.

use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use sha2::{Digest, Sha256};
use warp::filters::BoxedFilter;
use warp::http::{HeaderMap, HeaderValue, StatusCode, header};
use warp::reply::Response;
use warp::{Filter, Rejection};

use crate::api::others;
use crate::api::routes::{self as table, Route};

/// The `Content-Security-Policy` of every UI answer: scripts, styles and images from this
/// origin only, no inline script or style, and the page may not be framed.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
                       img-src 'self' data:; connect-src 'self'; frame-src 'self'; \
                       form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// The page of both views: the script picks the view from the path.
const PAGE: &str = include_str!("assets/index.html");

/// Where the page names the SMTP port (for the empty inbox's hint); the API does not tell it.
const SMTP_PORT_MARK: &str = "{{smtp_port}}";

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const SVG: &str = "image/svg+xml";

/// The files under `/ui/`: name, content type, content.
const FILES: &[(&str, &str, &[u8])] = &[
    ("app.js", JS, include_bytes!("assets/app.js")),
    ("api.js", JS, include_bytes!("assets/api.js")),
    ("dom.js", JS, include_bytes!("assets/dom.js")),
    ("format.js", JS, include_bytes!("assets/format.js")),
    ("keys.js", JS, include_bytes!("assets/keys.js")),
    ("shell.js", JS, include_bytes!("assets/shell.js")),
    ("list.js", JS, include_bytes!("assets/list.js")),
    ("viewer.js", JS, include_bytes!("assets/viewer.js")),
    ("mail.js", JS, include_bytes!("assets/mail.js")),
    ("admin.js", JS, include_bytes!("assets/admin.js")),
    ("style.css", CSS, include_bytes!("assets/style.css")),
    ("icon.svg", SVG, include_bytes!("assets/icon.svg")),
];

/// One file, ready to serve.
#[derive(Debug)]
struct File {
    content_type: &'static str,
    body: Bytes,
    /// Strong: a digest of `body`.
    etag: HeaderValue,
    /// The gzipped form and its own ETag, made on first use; `None` when gzip does not make
    /// the file smaller.
    gzip: OnceLock<Option<(Bytes, HeaderValue)>>,
}

impl File {
    fn new(content_type: &'static str, body: Bytes) -> File {
        let etag = tag(&body, "");
        File {
            content_type,
            body,
            etag,
            gzip: OnceLock::new(),
        }
    }

    fn gzipped(&self) -> Option<&(Bytes, HeaderValue)> {
        self.gzip
            .get_or_init(|| {
                let packed = gzip(&self.body);
                (packed.len() < self.body.len()).then(|| {
                    let etag = tag(&self.body, "-gzip");
                    (Bytes::from(packed), etag)
                })
            })
            .as_ref()
    }
}

/// A strong entity tag for `body`, with `suffix` telling apart encodings of the same content
/// (each representation needs its own strong tag).
fn tag(body: &[u8], suffix: &str) -> HeaderValue {
    let digest = Sha256::digest(body);
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    HeaderValue::from_str(&format!("\"{hex}{suffix}\"")).expect("hex is a valid header value")
}

fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    // Writing into a Vec cannot fail.
    enc.write_all(data).expect("gzip into memory");
    enc.finish().expect("gzip into memory")
}

/// The UI's files, embedded, with the SMTP port written into the page. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Ui {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    page: File,
    files: Vec<(&'static str, File)>,
}

impl Ui {
    /// The UI of a server whose SMTP listener has `smtp_port` (`None`: unknown, the page then
    /// suggests the default port).
    pub fn new(smtp_port: Option<u16>) -> Ui {
        let port = smtp_port.map(|p| p.to_string()).unwrap_or_default();
        let page = PAGE.replace(SMTP_PORT_MARK, &port);
        Ui {
            inner: Arc::new(Inner {
                page: File::new("text/html; charset=utf-8", Bytes::from(page)),
                files: FILES
                    .iter()
                    .map(|(name, ct, body)| (*name, File::new(ct, Bytes::from_static(body))))
                    .collect(),
            }),
        }
    }

    fn file(&self, name: &str) -> Option<&File> {
        self.inner
            .files
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, f)| f)
    }
}

/// Whether `Accept-Encoding` takes gzip: `gzip` (or `x-gzip`, or `*`) with a non-zero `q`.
fn accepts_gzip(headers: &HeaderMap) -> bool {
    let mut gzip = None;
    let mut any = None;
    for value in headers.get_all(header::ACCEPT_ENCODING) {
        let Ok(value) = value.to_str() else { continue };
        for item in value.split(',') {
            let mut parts = item.split(';');
            let coding = parts.next().unwrap_or_default().trim();
            let q = parts
                .filter_map(|p| {
                    let (k, v) = p.split_once('=')?;
                    k.trim().eq_ignore_ascii_case("q").then(|| v.trim())
                })
                .next()
                .map_or(1.0, |q| q.parse::<f32>().unwrap_or(0.0));
            if coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip") {
                gzip = Some(q > 0.0);
            } else if coding == "*" {
                any = Some(q > 0.0);
            }
        }
    }
    gzip.or(any).unwrap_or(false)
}

/// Whether `If-None-Match` names `etag` (or is `*`). The comparison is weak, as RFC 9110
/// wants for this header: `W/"x"` matches `"x"`.
fn not_modified(headers: &HeaderMap, etag: &HeaderValue) -> bool {
    let etag = etag.to_str().unwrap_or_default();
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .any(|t| t == "*" || t.strip_prefix("W/").unwrap_or(t) == etag)
}

/// The answer for `file`: 304 when the client has it, else the file, gzipped when the client
/// takes it. A `HEAD` gets the same headers; the server leaves out the body.
fn serve(file: &File, request: &HeaderMap) -> Response {
    let (body, etag, gzipped) = match accepts_gzip(request).then(|| file.gzipped()).flatten() {
        Some((body, etag)) => (body.clone(), etag, true),
        None => (file.body.clone(), &file.etag, false),
    };
    let fresh = not_modified(request, etag);
    let mut res = if fresh {
        let mut r = Response::new(Bytes::new().into());
        *r.status_mut() = StatusCode::NOT_MODIFIED;
        r
    } else {
        Response::new(body.into())
    };
    let h = res.headers_mut();
    if !fresh {
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(file.content_type),
        );
        if gzipped {
            h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        }
    }
    h.insert(header::ETAG, etag.clone());
    h.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    res
}

fn get_or_head() -> impl Filter<Extract = (), Error = Rejection> + Clone {
    warp::get().or(warp::head()).unify()
}

fn with_ui(ui: Ui) -> impl Filter<Extract = (Ui,), Error = std::convert::Infallible> + Clone {
    warp::any().map(move || ui.clone())
}

/// The UI's routes, or with `None` (`--no-ui`) none: every path is then left to the API's
/// JSON 404.
pub fn routes(ui: Option<Ui>) -> BoxedFilter<(Response,)> {
    let Some(ui) = ui else {
        return warp::any()
            .and_then(|| async { Err::<Response, _>(warp::reject::not_found()) })
            .boxed();
    };
    page(warp::path::end().boxed(), ui.clone(), table::UI_PAGE)
        .or(page(
            warp::path!("admin").boxed(),
            ui.clone(),
            table::UI_ADMIN,
        ))
        .unify()
        .or(file(ui))
        .unify()
        .boxed()
}

/// GET and HEAD of the page, at `path`.
fn page(
    path: BoxedFilter<()>,
    ui: Ui,
    route: Route,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    path.and(
        get_or_head()
            .and(with_ui(ui))
            .and(warp::header::headers_cloned())
            .map(|ui: Ui, h: HeaderMap| serve(&ui.inner.page, &h))
            .or(others(route))
            .unify(),
    )
}

/// GET and HEAD /ui/{file}; an unknown file is the API's JSON 404.
fn file(ui: Ui) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    let path = || warp::path!("ui" / String);
    path()
        .and(get_or_head())
        .and(with_ui(ui))
        .and(warp::header::headers_cloned())
        .and_then(|name: String, ui: Ui, h: HeaderMap| async move {
            match ui.file(&name) {
                Some(f) => Ok(serve(f, &h)),
                None => Err(warp::reject::not_found()),
            }
        })
        .or(path()
            .and(others(table::UI_FILE))
            .map(|_: String, r: Response| r))
        .unify()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The budget of all files together, uncompressed.
    const MAX_TOTAL: usize = 250 * 1024;

    fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn all_files_together_stay_within_the_budget() {
        let total: usize = PAGE.len() + FILES.iter().map(|(_, _, b)| b.len()).sum::<usize>();
        assert!(total < MAX_TOTAL, "{total} bytes, over {MAX_TOTAL}");
    }

    #[test]
    fn the_page_names_the_smtp_port() {
        assert_eq!(PAGE.matches(SMTP_PORT_MARK).count(), 1);
        let ui = Ui::new(Some(2525));
        let page = std::str::from_utf8(&ui.inner.page.body).unwrap();
        assert!(page.contains("content=\"2525\""), "{page}");
        let page = Ui::new(None).inner.page.body.clone();
        assert!(!std::str::from_utf8(&page).unwrap().contains("{{"));
    }

    /// What the page's CSP would block, or what would break the rule that mail content never
    /// becomes markup: inline scripts and styles, `innerHTML` and its kin, files from
    /// elsewhere.
    #[test]
    fn the_files_keep_to_the_csp_and_build_no_markup_from_strings() {
        let lower = PAGE.to_ascii_lowercase();
        for bad in [" style=", "<style", "javascript:", "http://", "https://"] {
            assert!(!lower.contains(bad), "index.html has {bad}");
        }
        // Event handler attributes: ` on<letters>=`.
        for (i, _) in lower.match_indices(" on") {
            let name: String = lower[i + 3..]
                .chars()
                .take_while(char::is_ascii_lowercase)
                .collect();
            let after = &lower[i + 3 + name.len()..];
            assert!(
                name.is_empty() || !after.starts_with('='),
                "index.html has an event handler attribute: on{name}"
            );
        }
        let scripts = lower.matches("<script").count();
        assert_eq!(
            scripts,
            lower.matches("<script type=\"module\" src=\"/ui/").count(),
            "index.html: every script is a module from /ui/"
        );
        for (name, _, body) in FILES {
            let Ok(text) = std::str::from_utf8(body) else {
                panic!("{name} is not UTF-8")
            };
            for bad in [
                "innerHTML",
                "outerHTML",
                "insertAdjacentHTML",
                "document.write",
                "eval(",
                "new Function",
                "setAttribute('style'",
                "setAttribute(\"style\"",
                "cssText",
            ] {
                assert!(!text.contains(bad), "{name} uses {bad}");
            }
        }
    }

    /// Every `/ui/...` the page names and every module a script imports is a file here.
    #[test]
    fn every_file_referred_to_is_served() {
        let mut wanted: Vec<String> = PAGE
            .match_indices("\"/ui/")
            .map(|(i, _)| {
                let rest = &PAGE[i + 5..];
                rest[..rest.find('"').unwrap()].to_owned()
            })
            .collect();
        for (_, ct, body) in FILES {
            if *ct != JS {
                continue;
            }
            let text = std::str::from_utf8(body).unwrap();
            for (i, _) in text.match_indices(" from './") {
                let rest = &text[i + 9..];
                wanted.push(rest[..rest.find('\'').unwrap()].to_owned());
            }
        }
        assert!(wanted.len() > 5, "{wanted:?}");
        let ui = Ui::new(None);
        for name in wanted {
            assert!(
                ui.file(&name).is_some(),
                "{name} is referred to but not served"
            );
        }
    }

    #[test]
    fn gzip_is_taken_when_accepted() {
        use header::ACCEPT_ENCODING as AE;
        assert!(accepts_gzip(&headers(&[(AE, "gzip, deflate, br")])));
        assert!(accepts_gzip(&headers(&[(AE, "br;q=1.0, GZIP;q=0.5")])));
        assert!(accepts_gzip(&headers(&[(AE, "*")])));
        assert!(accepts_gzip(&headers(&[(AE, "br"), (AE, "x-gzip")])));
        assert!(!accepts_gzip(&headers(&[])));
        assert!(!accepts_gzip(&headers(&[(AE, "identity")])));
        assert!(!accepts_gzip(&headers(&[(AE, "gzip;q=0")])));
        assert!(!accepts_gzip(&headers(&[(AE, "gzip; q=0.0, *")])));
        assert!(!accepts_gzip(&headers(&[(AE, "*;q=0")])));
        assert!(!accepts_gzip(&headers(&[(AE, "deflate")])));
    }

    #[test]
    fn if_none_match_compares_weakly() {
        use header::IF_NONE_MATCH as INM;
        let etag = HeaderValue::from_static("\"abc\"");
        assert!(not_modified(&headers(&[(INM, "\"abc\"")]), &etag));
        assert!(not_modified(&headers(&[(INM, "W/\"abc\"")]), &etag));
        assert!(not_modified(&headers(&[(INM, "\"x\", \"abc\"")]), &etag));
        assert!(not_modified(&headers(&[(INM, "*")]), &etag));
        assert!(!not_modified(&headers(&[(INM, "\"abcd\"")]), &etag));
        assert!(!not_modified(&headers(&[(INM, "abc")]), &etag));
        assert!(!not_modified(&headers(&[]), &etag));
    }

    #[test]
    fn each_encoding_has_its_own_tag_and_gzip_is_made_once() {
        let ui = Ui::new(None);
        let css = ui.file("style.css").unwrap();
        let (packed, etag) = css.gzipped().expect("CSS compresses");
        assert_ne!(etag, css.etag);
        assert!(packed.len() < css.body.len());
        let again = css.gzipped().unwrap();
        assert_eq!(again.0.as_ptr(), packed.as_ptr(), "kept, not made again");
        let mut out = Vec::new();
        use std::io::Read;
        flate2::read::GzDecoder::new(&packed[..])
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, css.body);
    }
}
