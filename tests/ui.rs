//! The web UI's serving, against the real server: the pages and files with their security
//! headers, strong ETags and 304s, gzip when asked for, JSON 404s for unknown files, 405s for
//! other methods, and nothing at all with `--no-ui`. The UI itself is tested in a browser.

mod common;

use std::io::Read;

use common::*;

/// The page's `Content-Security-Policy`, as the UI's contract spells it.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; frame-src 'self'; form-action 'self'; base-uri 'none'; \
                   frame-ancestors 'none'";

/// A request with the given headers; reqwest here neither asks for nor undoes compression.
async fn get(
    srv: &TestServer,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> reqwest::Response {
    let mut req = srv.client.request(method.parse().unwrap(), srv.url(path));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    tokio::time::timeout(TIMEOUT, req.send())
        .await
        .expect("answer in time")
        .expect("request")
}

fn header<'a>(res: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    res.headers().get(name).and_then(|v| v.to_str().ok())
}

/// The headers every UI answer has, 304s included.
#[track_caller]
fn assert_ui_headers(res: &reqwest::Response) {
    let what = res.url().path().to_owned();
    assert_eq!(header(res, "content-security-policy"), Some(CSP), "{what}");
    assert_eq!(
        header(res, "x-content-type-options"),
        Some("nosniff"),
        "{what}"
    );
    assert_eq!(
        header(res, "referrer-policy"),
        Some("no-referrer"),
        "{what}"
    );
    assert_eq!(header(res, "cache-control"), Some("no-cache"), "{what}");
    assert_eq!(header(res, "vary"), Some("Accept-Encoding"), "{what}");
    let etag = header(res, "etag").unwrap_or_else(|| panic!("{what}: no ETag"));
    assert!(
        etag.starts_with('"') && etag.ends_with('"') && etag.len() > 10,
        "{what}: a strong ETag, not {etag}"
    );
}

#[tokio::test]
async fn pages_and_files_are_served_with_their_headers() {
    let srv = TestServer::start().await;
    for (path, content_type, needle) in [
        (
            "/",
            "text/html; charset=utf-8",
            "<script type=\"module\" src=\"/ui/app.js\">",
        ),
        ("/admin", "text/html; charset=utf-8", "/ui/style.css"),
        ("/ui/app.js", "text/javascript; charset=utf-8", "import("),
        (
            "/ui/style.css",
            "text/css; charset=utf-8",
            "prefers-color-scheme",
        ),
        ("/ui/icon.svg", "image/svg+xml", "<svg"),
    ] {
        let res = get(&srv, "GET", path, &[]).await;
        assert_eq!(res.status(), 200, "{path}");
        assert_ui_headers(&res);
        assert_eq!(header(&res, "content-type"), Some(content_type), "{path}");
        assert_eq!(header(&res, "content-encoding"), None, "{path}");
        let body = res.text().await.unwrap();
        assert!(body.contains(needle), "{path}: {body}");
    }
    // Both views are the one page; the script picks the view.
    let root = get(&srv, "GET", "/", &[]).await;
    let admin = get(&srv, "GET", "/admin", &[]).await;
    assert_eq!(header(&root, "etag"), header(&admin, "etag"));
    srv.stop().await;
}

#[tokio::test]
async fn the_page_names_the_servers_smtp_port() {
    let srv = TestServer::start().await;
    let page = get(&srv, "GET", "/", &[]).await.text().await.unwrap();
    let meta = format!("<meta name=\"smtp-port\" content=\"{}\">", srv.smtp.port());
    assert!(page.contains(&meta), "{page}");
    srv.stop().await;
}

#[tokio::test]
async fn head_answers_the_headers_without_the_body() {
    let srv = TestServer::start().await;
    for path in ["/", "/admin", "/ui/mail.js"] {
        let full = get(&srv, "GET", path, &[]).await;
        let length = full.text().await.unwrap().len().to_string();
        let res = get(&srv, "HEAD", path, &[]).await;
        assert_eq!(res.status(), 200, "{path}");
        assert_ui_headers(&res);
        assert_eq!(
            header(&res, "content-length"),
            Some(length.as_str()),
            "{path}"
        );
        assert!(res.bytes().await.unwrap().is_empty(), "{path}");
    }
    srv.stop().await;
}

#[tokio::test]
async fn a_known_etag_answers_304() {
    let srv = TestServer::start().await;
    for path in ["/", "/ui/viewer.js"] {
        let first = get(&srv, "GET", path, &[]).await;
        let etag = header(&first, "etag").unwrap().to_owned();

        let res = get(&srv, "GET", path, &[("if-none-match", &etag)]).await;
        assert_eq!(res.status(), 304, "{path}");
        assert_ui_headers(&res);
        assert_eq!(header(&res, "etag"), Some(etag.as_str()));
        assert!(res.bytes().await.unwrap().is_empty());

        // Among others, and compared weakly, as RFC 9110 has it for If-None-Match.
        let list = format!("\"nope\", W/{etag}");
        let res = get(&srv, "GET", path, &[("if-none-match", &list)]).await;
        assert_eq!(res.status(), 304, "{path}: {list}");

        let res = get(&srv, "GET", path, &[("if-none-match", "\"stale\"")]).await;
        assert_eq!(res.status(), 200, "{path}");
        let res = get(&srv, "HEAD", path, &[("if-none-match", &etag)]).await;
        assert_eq!(res.status(), 304, "HEAD {path}");
    }
    srv.stop().await;
}

#[tokio::test]
async fn gzip_when_the_client_takes_it() {
    let srv = TestServer::start().await;
    for path in ["/", "/ui/mail.js", "/ui/style.css"] {
        let plain = get(&srv, "GET", path, &[]).await;
        let plain_etag = header(&plain, "etag").unwrap().to_owned();
        let plain = plain.bytes().await.unwrap();

        let res = get(
            &srv,
            "GET",
            path,
            &[("accept-encoding", "br, gzip, deflate")],
        )
        .await;
        assert_eq!(res.status(), 200, "{path}");
        assert_ui_headers(&res);
        assert_eq!(header(&res, "content-encoding"), Some("gzip"), "{path}");
        let gz_etag = header(&res, "etag").unwrap().to_owned();
        assert_ne!(
            gz_etag, plain_etag,
            "{path}: each representation has its own tag"
        );
        let packed = res.bytes().await.unwrap();
        assert!(packed.len() < plain.len(), "{path}");
        let mut unpacked = Vec::new();
        flate2::read::GzDecoder::new(&packed[..])
            .read_to_end(&mut unpacked)
            .unwrap();
        assert_eq!(unpacked, plain, "{path}");

        // Made once and kept: the same bytes again.
        let again = get(&srv, "GET", path, &[("accept-encoding", "gzip")]).await;
        assert_eq!(again.bytes().await.unwrap(), packed, "{path}");

        let res = get(
            &srv,
            "GET",
            path,
            &[("accept-encoding", "gzip"), ("if-none-match", &gz_etag)],
        )
        .await;
        assert_eq!(res.status(), 304, "{path}");
        assert_eq!(header(&res, "etag"), Some(gz_etag.as_str()));
        // The gzip tag does not name the plain representation.
        let res = get(&srv, "GET", path, &[("if-none-match", &gz_etag)]).await;
        assert_eq!(res.status(), 200, "{path}");
        assert_eq!(header(&res, "content-encoding"), None);

        let refused = get(
            &srv,
            "GET",
            path,
            &[("accept-encoding", "gzip;q=0, identity")],
        )
        .await;
        assert_eq!(header(&refused, "content-encoding"), None, "{path}");
    }
    srv.stop().await;
}

#[tokio::test]
async fn unknown_files_and_other_methods_get_the_apis_json_errors() {
    let srv = TestServer::start().await;
    for path in [
        "/ui/nope.js",
        "/ui/",
        "/ui",
        "/ui/app.js/x",
        "/admin/x",
        "/index.html",
    ] {
        let r = srv.reply("GET", path, None, None).await;
        assert_eq!(r.status, 404, "{path}: {}", r.text);
        assert_eq!(r.json["error"]["code"], "not_found", "{path}");
    }
    for path in ["/", "/admin", "/ui/app.js"] {
        let r = srv.reply("POST", path, None, None).await;
        assert_eq!(r.status, 405, "{path}: {}", r.text);
        assert_eq!(r.json["error"]["code"], "method_not_allowed");
        assert_eq!(r.header("allow"), Some("GET, HEAD"), "{path}");
    }
    srv.stop().await;
}

#[tokio::test]
async fn no_ui_leaves_only_the_api() {
    let mut config = test_config();
    config.ui = false;
    let srv = TestServer::start_with(config, None).await;
    for path in ["/", "/admin", "/ui/app.js", "/ui/style.css"] {
        for method in ["GET", "HEAD", "POST"] {
            let res = get(&srv, method, path, &[]).await;
            assert_eq!(res.status(), 404, "{method} {path}");
            assert_eq!(header(&res, "content-security-policy"), None);
            if method == "GET" {
                let v: serde_json::Value = res.json().await.unwrap();
                assert_eq!(v["error"]["code"], "not_found", "{path}");
            }
        }
    }
    let (status, _) = srv.call("GET", "/healthz", None, None).await;
    assert_eq!(status, 200);
    // Counted as what they are then: unmatched.
    let metrics = srv.reply("GET", "/metrics", None, None).await.text;
    assert!(!metrics.contains("route=\"/ui/{file}\""), "{metrics}");
    srv.stop().await;
}

#[tokio::test]
async fn requests_for_the_ui_are_counted_by_route() {
    let srv = TestServer::start().await;
    get(&srv, "GET", "/ui/app.js", &[]).await;
    get(&srv, "GET", "/ui/list.js", &[]).await;
    get(&srv, "GET", "/", &[]).await;
    let metrics = srv.reply("GET", "/metrics", None, None).await.text;
    for line in [
        "fakemail_http_requests_total{route=\"/ui/{file}\",method=\"GET\",status=\"200\"} 2",
        "fakemail_http_requests_total{route=\"/\",method=\"GET\",status=\"200\"} 1",
    ] {
        assert!(metrics.contains(line), "{line} in\n{metrics}");
    }
    srv.stop().await;
}
