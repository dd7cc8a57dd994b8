//! The MailHog API end to end, against the real server on 127.0.0.1:0: every route, MailHog's
//! JSON shapes checked field by field against a multipart message sent over SMTP, both
//! `--compat-auth` modes, the `/mailhog` prefix and the API's own port (`--mailhog-port`),
//! doubled slashes, the event stream, Jim as fault injection, and release refused.

mod common;

use std::net::{Ipv4Addr, SocketAddr};

use common::*;
use fakemail::config::{CompatAuth, Config};
use serde_json::{Value, json};

/// The admin token of these tests.
const TOKEN: &str = "mailhog-test-admin-token";

fn config(chaos: bool) -> Config {
    let mut c = test_config();
    c.admin_token = Some(TOKEN.into());
    c.service.chaos = chaos;
    c.compat.mailhog_addr = Some(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)));
    c
}

async fn start() -> TestServer {
    TestServer::start_with(config(false), None).await
}

/// A multipart message with a text part, an HTML part and a base64 attachment.
const MULTIPART: &str = "From: Alice <alice@example.test>\r\n\
To: Bob <bob@example.test>\r\n\
Subject: Report attached\r\n\
Message-ID: <report@example.test>\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"b1\"\r\n\
\r\n\
--b1\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
\r\n\
Hello Bob, the report is attached.\r\n\
--b1\r\n\
Content-Type: application/octet-stream; name=\"report.bin\"\r\n\
Content-Disposition: attachment; filename=\"report.bin\"\r\n\
Content-Transfer-Encoding: base64\r\n\
\r\n\
AAECAwQ=\r\n\
--b1--\r\n";

/// A simple message with a subject.
fn simple(subject: &str, to: &str) -> String {
    format!(
        "From: carol@example.test\r\nTo: {to}\r\nSubject: {subject}\r\n\r\nBody of {subject}.\r\n"
    )
}

/// A request with Basic auth (user `anyone`, the admin token as password).
fn basic(srv: &TestServer, method: &str, url: String) -> reqwest::RequestBuilder {
    srv.client
        .request(method.parse().unwrap(), url)
        .basic_auth("anyone", Some(TOKEN))
}

/// GET under `/mailhog` with Basic auth; the status and JSON.
async fn get(srv: &TestServer, path: &str) -> (u16, Value) {
    let r = send(basic(srv, "GET", srv.url(&format!("/mailhog{path}")))).await;
    (r.status, r.json)
}

async fn call(srv: &TestServer, method: &str, path: &str, body: Option<Value>) -> Reply {
    compat_call(srv, TOKEN, method, &format!("/mailhog{path}"), body).await
}

#[tokio::test]
async fn messages_have_mailhogs_shape_field_by_field() {
    let srv = start().await;
    send_smtp(
        &srv,
        "alice@example.test",
        &["bob@example.test", "dave@example.test"],
        MULTIPART,
    )
    .await;
    let (s, page) = get(&srv, "/api/v2/messages").await;
    assert_eq!(s, 200, "{page}");
    assert_eq!(
        (page["total"].as_u64(), page["count"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(page["start"], 0);
    let m = &page["items"][0];
    let id = m["ID"].as_str().expect("ID is a string");
    assert!(!id.is_empty());

    // From and To: SMTP paths, from the envelope.
    assert_eq!(
        m["From"],
        json!({"Relays": null, "Mailbox": "alice", "Domain": "example.test", "Params": ""})
    );
    let to: Vec<(&str, &str)> = m["To"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["Mailbox"].as_str().unwrap(),
                p["Domain"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(to, [("bob", "example.test"), ("dave", "example.test")]);

    // Content: headers as a map of arrays, the encoded body, the size of the source.
    let content = &m["Content"];
    assert_eq!(content["Headers"]["Subject"], json!(["Report attached"]));
    assert_eq!(
        content["Headers"]["From"],
        json!(["Alice <alice@example.test>"])
    );
    assert_eq!(
        content["Headers"]["Content-Type"],
        json!(["multipart/mixed; boundary=\"b1\""])
    );
    let body = content["Body"].as_str().unwrap();
    assert!(body.starts_with("--b1\r\n"), "{body}");
    assert!(body.contains("AAECAwQ="), "the body stays encoded: {body}");
    let data = m["Raw"]["Data"].as_str().unwrap();
    assert_eq!(content["Size"].as_u64(), Some(data.len() as u64));
    assert!(data.ends_with(MULTIPART), "{data}");
    assert!(content["MIME"].is_null());

    // Raw: the envelope and the source.
    assert_eq!(m["Raw"]["From"], "alice@example.test");
    assert_eq!(
        m["Raw"]["To"],
        json!(["bob@example.test", "dave@example.test"])
    );
    assert_eq!(m["Raw"]["Helo"], "");

    // Created: an RFC 3339 time.
    rfc3339(&m["Created"]);

    // MIME: the parts as MailHog splits them, the closing `--` included.
    let parts = m["MIME"]["Parts"].as_array().expect("MIME.Parts");
    assert_eq!(parts.len(), 3, "{parts:?}");
    assert_eq!(
        parts[0]["Headers"]["Content-Type"],
        json!(["text/plain; charset=utf-8"])
    );
    assert_eq!(parts[0]["Body"], "Hello Bob, the report is attached.");
    assert_eq!(
        parts[1]["Headers"]["Content-Disposition"],
        json!(["attachment; filename=\"report.bin\""])
    );
    assert_eq!(parts[1]["Body"], "AAECAwQ=");
    assert!(parts[1]["MIME"].is_null());
    assert_eq!(parts[2]["Body"], "--");

    // v1 shows the same message.
    let (s, one) = get(&srv, &format!("/api/v1/messages/{id}")).await;
    assert_eq!(s, 200, "{one}");
    assert_eq!(&one, m);
    let (s, list) = get(&srv, "/api/v1/messages").await;
    assert_eq!(s, 200);
    assert_eq!(list, json!([m]));

    // The download is the source; a part's download its decoded body with its headers.
    let r = send(basic(
        &srv,
        "GET",
        srv.url(&format!("/mailhog/api/v1/messages/{id}/download")),
    ))
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("message/rfc822"));
    assert_eq!(r.text, data);
    let res = basic(
        &srv,
        "GET",
        srv.url(&format!(
            "/mailhog/api/v1/messages/{id}/mime/part/1/download"
        )),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.headers()["content-disposition"],
        "attachment; filename=\"report.bin\""
    );
    assert_eq!(
        res.headers()["content-type"],
        "application/octet-stream; name=\"report.bin\""
    );
    assert_eq!(res.bytes().await.unwrap().as_ref(), [0u8, 1, 2, 3, 4]);
    let (s, e) = get(&srv, &format!("/api/v1/messages/{id}/mime/part/9/download")).await;
    assert_eq!((s, e["error"]["code"].as_str()), (404, Some("not_found")));
    srv.stop().await;
}

#[tokio::test]
async fn listing_pages_newest_first_and_search_matches_parts_of_addresses() {
    let srv = start().await;
    for (i, to) in ["x@example.test", "y@example.test", "x@example.test"]
        .iter()
        .enumerate()
    {
        send_smtp(
            &srv,
            "carol@example.test",
            &[to],
            &simple(&format!("m{i}"), to),
        )
        .await;
    }
    let subjects = |v: &Value| -> Vec<String> {
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                m["Content"]["Headers"]["Subject"][0]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect()
    };
    let (_, all) = get(&srv, "/api/v2/messages").await;
    assert_eq!(subjects(&all), ["m2", "m1", "m0"]);
    let (_, page) = get(&srv, "/api/v2/messages?start=1&limit=1").await;
    assert_eq!(subjects(&page), ["m1"]);
    assert_eq!(
        (
            page["total"].as_u64(),
            page["count"].as_u64(),
            page["start"].as_u64()
        ),
        (Some(3), Some(1), Some(1))
    );

    let (s, to) = get(&srv, "/api/v2/search?kind=to&query=x@example.test").await;
    assert_eq!(s, 200);
    assert_eq!(subjects(&to), ["m2", "m0"]);
    assert_eq!(to["total"], 2);
    let (_, from) = get(&srv, "/api/v2/search?kind=from&query=CAROL@example.test").await;
    assert_eq!(from["total"], 3);
    // As MailHog: any part of an address, in any letter case.
    let (_, part) = get(&srv, "/api/v2/search?kind=to&query=X@EXAMPLE").await;
    assert_eq!(subjects(&part), ["m2", "m0"]);
    let (_, part) = get(&srv, "/api/v2/search?kind=from&query=carol@").await;
    assert_eq!(part["total"], 3);
    let (_, none) = get(&srv, "/api/v2/search?kind=from&query=x@example").await;
    assert_eq!(none["total"], 0);
    let (_, containing) = get(&srv, "/api/v2/search?kind=containing&query=body%20of%20m1").await;
    assert_eq!(subjects(&containing), ["m1"]);
    let (_, limited) = get(
        &srv,
        "/api/v2/search?kind=from&query=carol@example.test&start=2&limit=5",
    )
    .await;
    assert_eq!(
        (subjects(&limited), limited["total"].as_u64()),
        (vec!["m0".to_owned()], Some(3))
    );
    for bad in ["kind=subject&query=m1", "kind=to", "query=x"] {
        let (s, e) = get(&srv, &format!("/api/v2/search?{bad}")).await;
        assert_eq!(s, 400, "{bad}: {e}");
    }

    // Delete one, then all.
    let id = all["items"][0]["ID"].as_str().unwrap().to_owned();
    let r = call(&srv, "DELETE", &format!("/api/v1/messages/{id}"), None).await;
    assert_eq!(r.status, 200);
    let (s, _) = get(&srv, &format!("/api/v1/messages/{id}")).await;
    assert_eq!(s, 404);
    let (_, left) = get(&srv, "/api/v2/messages").await;
    assert_eq!(left["total"], 2);
    let r = call(&srv, "DELETE", "/api/v1/messages", None).await;
    assert_eq!(r.status, 200);
    let (_, none) = get(&srv, "/api/v2/messages").await;
    assert_eq!(
        none,
        json!({"total": 0, "count": 0, "start": 0, "items": []})
    );
    srv.stop().await;
}

#[tokio::test]
async fn the_admin_token_is_needed_as_basic_password_or_bearer_token() {
    let srv = start().await;
    let url = srv.url("/mailhog/api/v2/messages");
    let unauthorized = |r: Reply| {
        assert_eq!(r.status, 401, "{}", r.text);
        assert_eq!(
            r.header("www-authenticate"),
            Some("Basic realm=\"fakemail\"")
        );
        assert_eq!(r.json["error"]["code"], "unauthorized");
    };
    unauthorized(send(srv.client.get(&url)).await);
    unauthorized(send(srv.client.get(&url).basic_auth("admin", Some("wrong"))).await);
    unauthorized(send(srv.client.get(&url).bearer_auth("wrong")).await);
    unauthorized(send(srv.client.get(&url).basic_auth(TOKEN, None::<&str>)).await);
    for user in ["anyone", "", "admin"] {
        let r = send(srv.client.get(&url).basic_auth(user, Some(TOKEN))).await;
        assert_eq!(r.status, 200, "user {user:?}: {}", r.text);
    }
    let r = send(srv.client.get(&url).bearer_auth(TOKEN)).await;
    assert_eq!(r.status, 200);
    // The dedicated port asks the same.
    let port = format!("http://{}/api/v2/messages", srv.mailhog.unwrap());
    unauthorized(send(srv.client.get(&port)).await);
    assert_eq!(
        send(srv.client.get(&port).bearer_auth(TOKEN)).await.status,
        200
    );
    srv.stop().await;

    // --compat-auth none: no credentials needed.
    let mut c = config(false);
    c.compat.auth = CompatAuth::None;
    let srv = TestServer::start_with(c, None).await;
    let r = send(srv.client.get(srv.url("/mailhog/api/v2/messages"))).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let port = format!("http://{}/api/v1/messages", srv.mailhog.unwrap());
    assert_eq!(send(srv.client.get(&port)).await.json, json!([]));
    // The native admin API still wants its token.
    assert_eq!(
        srv.call("GET", "/api/v1/admin/messages", None, None)
            .await
            .0,
        401
    );
    srv.stop().await;
}

#[tokio::test]
async fn the_api_is_served_under_the_prefix_and_at_the_root_of_its_port_with_doubled_slashes() {
    let srv = start().await;
    send_smtp(
        &srv,
        "carol@example.test",
        &["x@example.test"],
        &simple("one", "x@example.test"),
    )
    .await;
    let port = srv.mailhog.expect("--mailhog-port");
    assert_ne!(port, srv.addr);
    let total = |r: Reply| {
        assert_eq!(r.status, 200, "{}", r.text);
        r.json["total"].as_u64()
    };
    for url in [
        srv.url("/mailhog/api/v2/messages"),
        srv.url("/mailhog//api/v2/messages"),
        srv.url("//mailhog//api//v2/messages"),
        format!("http://{port}/api/v2/messages"),
        format!("http://{port}//api/v2/messages"),
    ] {
        assert_eq!(
            total(send(srv.client.get(&url).bearer_auth(TOKEN)).await),
            Some(1),
            "{url}"
        );
    }
    // The native API is not at the dedicated port, nor MailHog's at the HTTP port's root.
    let r = send(
        srv.client
            .get(format!("http://{port}/api/v1/admin/messages"))
            .bearer_auth(TOKEN),
    )
    .await;
    assert_eq!(r.status, 404);
    let r = send(
        srv.client
            .get(srv.url("/api/v2/messages"))
            .bearer_auth(TOKEN),
    )
    .await;
    assert_eq!(r.status, 404);
    // Unknown paths and methods.
    let (s, e) = get(&srv, "/api/v3/nothing").await;
    assert_eq!((s, e["error"]["code"].as_str()), (404, Some("not_found")));
    let r = call(&srv, "PATCH", "/api/v1/messages", None).await;
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("GET, DELETE, OPTIONS"));
    let r = send(basic(&srv, "OPTIONS", srv.url("/mailhog/api/v2/messages"))).await;
    assert_eq!(r.status, 200);
    srv.stop().await;
}

#[tokio::test]
async fn a_busy_mailhog_port_is_a_clear_start_up_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut c = config(false);
    c.compat.mailhog_addr = Some(taken.local_addr().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let err = fakemail::server::Server::bind(c, open_store(dir.path()))
        .await
        .err()
        .expect("the port is taken");
    let text = err.to_string();
    assert!(
        text.contains("the MailHog API") && text.contains("--mailhog-port"),
        "{text}"
    );
}

#[tokio::test]
async fn the_event_stream_announces_new_mail_in_mailhogs_shape() {
    let srv = start().await;
    let res = basic(&srv, "GET", srv.url("/mailhog/api/v1/events"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "text/event-stream");
    let mut stream = SseReader {
        res,
        buf: String::new(),
    };
    send_smtp(&srv, "alice@example.test", &["bob@example.test"], MULTIPART).await;
    let (event, data) = stream.next().await;
    assert_eq!(
        event, None,
        "MailHog's events are unnamed: a browser's `message`"
    );
    assert_eq!(
        data["Content"]["Headers"]["Subject"],
        json!(["Report attached"])
    );
    assert_eq!(data["From"]["Mailbox"], "alice");
    let (_, one) = get(
        &srv,
        &format!("/api/v1/messages/{}", data["ID"].as_str().unwrap()),
    )
    .await;
    assert_eq!(one, data);
    srv.stop().await;
}

/// Reads the data of events off a Server-Sent Events response.
struct SseReader {
    res: reqwest::Response,
    buf: String,
}

impl SseReader {
    /// The next event with data: its name (`None`: unnamed, a browser's `message`) and JSON.
    async fn next(&mut self) -> (Option<String>, Value) {
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let mut event = None;
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        event = Some(v.trim().to_owned());
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim_start());
                        data.push('\n');
                    }
                }
                if !data.is_empty() {
                    return (event, serde_json::from_str(&data).expect("JSON data"));
                }
                continue;
            }
            let chunk = tokio::time::timeout(TIMEOUT, self.res.chunk())
                .await
                .expect("an event in time")
                .expect("read")
                .expect("open");
            self.buf.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }
}

#[tokio::test]
async fn jim_becomes_fault_injection_rules_and_refuses_recipients() {
    // Without --chaos: a clear error.
    let srv = start().await;
    let (s, e) = get(&srv, "/api/v2/jim").await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (403, Some("chaos_disabled")),
        "{e}"
    );
    srv.stop().await;

    let srv = TestServer::start_with(config(true), None).await;
    let (s, _) = get(&srv, "/api/v2/jim").await;
    assert_eq!(s, 404, "Jim starts off");
    assert_eq!(
        call(&srv, "PUT", "/api/v2/jim", Some(json!({})))
            .await
            .status,
        404
    );
    assert_eq!(call(&srv, "DELETE", "/api/v2/jim", None).await.status, 404);

    // POST without a body: MailHog's defaults.
    assert_eq!(call(&srv, "POST", "/api/v2/jim", None).await.status, 201);
    let (s, jim) = get(&srv, "/api/v2/jim").await;
    assert_eq!(s, 200);
    assert_eq!(
        jim,
        json!({
            "DisconnectChance": 0.005, "AcceptChance": 0.99, "LinkSpeedAffect": 0.1,
            "LinkSpeedMin": 1024.0, "LinkSpeedMax": 10240.0, "RejectSenderChance": 0.05,
            "RejectRecipientChance": 0.05, "RejectAuthChance": 0.05
        })
    );
    assert_eq!(
        call(&srv, "POST", "/api/v2/jim", None).await.status,
        400,
        "already on"
    );
    let (_, chaos) = srv
        .call("GET", "/api/v1/admin/chaos", Some(TOKEN), None)
        .await;
    let rules = chaos["rules"].as_array().unwrap();
    assert_eq!(rules.len(), 9, "{chaos}");

    // Every recipient refused, nothing else.
    let settings = json!({"AcceptChance": 1.0, "RejectRecipientChance": 1.0});
    assert_eq!(
        call(&srv, "PUT", "/api/v2/jim", Some(settings))
            .await
            .status,
        200
    );
    let (_, jim) = get(&srv, "/api/v2/jim").await;
    assert_eq!(
        (
            jim["RejectRecipientChance"].as_f64(),
            jim["DisconnectChance"].as_f64()
        ),
        (Some(1.0), Some(0.0))
    );
    let (_, chaos) = srv
        .call("GET", "/api/v1/admin/chaos", Some(TOKEN), None)
        .await;
    assert_eq!(
        chaos["rules"].as_array().unwrap().len(),
        9,
        "PUT replaces Jim's rules"
    );
    let mut c = SmtpClient::connect(srv.smtp).await;
    c.expect("EHLO client.test", 250).await;
    c.expect("MAIL FROM:<a@example.test>", 250).await;
    let r = c.cmd("RCPT TO:<b@example.test>").await;
    assert_eq!(r.code, 550, "{r:?}");
    c.expect("QUIT", 221).await;
    let r = call(&srv, "PUT", "/api/v2/jim", None).await;
    assert_eq!(r.status, 400, "a PUT needs settings");

    // Jim off: mail flows again, and his rules are gone.
    assert_eq!(call(&srv, "DELETE", "/api/v2/jim", None).await.status, 200);
    assert_eq!(get(&srv, "/api/v2/jim").await.0, 404);
    let (_, chaos) = srv
        .call("GET", "/api/v1/admin/chaos", Some(TOKEN), None)
        .await;
    assert_eq!(chaos["rules"], json!([]));
    send_smtp(
        &srv,
        "a@example.test",
        &["b@example.test"],
        &simple("after Jim", "b@example.test"),
    )
    .await;

    // Rules cleared through the admin API turn Jim off too.
    assert_eq!(
        call(
            &srv,
            "POST",
            "/api/v2/jim",
            Some(json!({"AcceptChance": 1.0}))
        )
        .await
        .status,
        201
    );
    assert_eq!(
        srv.call("DELETE", "/api/v1/admin/chaos", Some(TOKEN), None)
            .await
            .0,
        204
    );
    assert_eq!(get(&srv, "/api/v2/jim").await.0, 404);
    srv.stop().await;
}

#[tokio::test]
async fn release_is_refused_with_a_clear_error() {
    let srv = start().await;
    send_smtp(
        &srv,
        "carol@example.test",
        &["x@example.test"],
        &simple("one", "x@example.test"),
    )
    .await;
    let (_, page) = get(&srv, "/api/v2/messages").await;
    let id = page["items"][0]["ID"].as_str().unwrap();
    let body = json!({"Host": "smtp.example.test", "Port": "25", "Email": "z@example.test"});
    let r = call(
        &srv,
        "POST",
        &format!("/api/v1/messages/{id}/release"),
        Some(body),
    )
    .await;
    assert_eq!(r.status, 501, "{}", r.text);
    assert_eq!(r.json["error"]["code"], "not_supported");
    assert!(
        r.json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("never sends mail out")
    );
    // The message is still there.
    assert_eq!(get(&srv, &format!("/api/v1/messages/{id}")).await.0, 200);
    srv.stop().await;
}

#[tokio::test]
async fn the_binary_prints_the_mailhog_port_and_warns_of_an_open_api_on_a_public_address() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = serve_cmd(dir.path());
    cmd.args(["--bind", "0.0.0.0", "--mailhog-port", "0"])
        .env("FAKEMAIL_COMPAT_AUTH", "none");
    let mut p = Process::start(cmd);
    let out = p.stdout();
    assert!(
        out.contains(&format!("  MailHog API: http://{}/mailhog\n", p.addr)),
        "{out}"
    );
    let own: SocketAddr = out
        .lines()
        .filter_map(|l| l.strip_prefix("  MailHog API: http://"))
        .find(|a| !a.ends_with("/mailhog"))
        .expect("the MailHog port is printed")
        .parse()
        .unwrap();
    let line = p.wait_for_log("--compat-auth none");
    assert!(line.contains("WARN"), "{line}");
    let url = format!("http://127.0.0.1:{}/api/v2/messages", own.port());
    let r = send(reqwest::Client::new().get(&url)).await;
    assert_eq!(r.status, 200, "the open API answers: {}", r.text);
    let body = r.json;
    assert_eq!(body["total"], 0);
    p.stop_with("TERM");
}
