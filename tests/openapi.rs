//! The OpenAPI document (`src/api/openapi.json`, served at `GET /api/v1/openapi.json`) against
//! the server it describes: the router and the document have the same paths, each with the
//! same methods (the router's read from the `Allow` header of a 405); the document holds
//! together; and a real answer to every operation it lists matches its schemas, checked by a
//! small JSON Schema checker that knows the keywords the document uses and refuses any other.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::*;
use serde_json::{Value, json};

const ADMIN: &str = "openapi-test-admin-token";

/// The document's file, relative to the crate.
const DOCUMENT: &str = "src/api/openapi.json";

/// The operations a path item may have, as OpenAPI spells them.
const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

fn read(rel: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {rel}: {e}"))
}

fn document() -> Value {
    serde_json::from_str(&read(DOCUMENT)).unwrap_or_else(|e| panic!("{DOCUMENT}: {e}"))
}

/// A path template with every parameter as `{}`: the router's and the document's names of
/// parameters differ, their places do not.
fn shape(template: &str) -> String {
    let mut out = String::new();
    let mut in_param = false;
    for c in template.chars() {
        match c {
            '{' => {
                in_param = true;
                out.push_str("{}");
            }
            '}' => in_param = false,
            c if !in_param => out.push(c),
            _ => {}
        }
    }
    out
}

/// The paths the router serves, as shapes: every `warp::path!(...)` in `src/api/filters.rs`,
/// its string literals as segments and its typed segments (`String`) as `{}`.
fn router_paths() -> BTreeSet<String> {
    let code: String = read("src/api/filters.rs")
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    let mut paths = BTreeSet::new();
    for (i, _) in code.match_indices("warp::path!(") {
        let args = &code[i + "warp::path!(".len()..];
        let args = &args[..args.find(')').expect("warp::path! closes")];
        let mut path = String::new();
        for segment in args.split('/').map(str::trim) {
            assert!(
                segment != "..",
                "`warp::path!({args})` is a prefix: give each route its whole path in one \
                 `warp::path!`, so that this test sees it"
            );
            path.push('/');
            match segment.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
                Some(literal) => path.push_str(literal),
                None => path.push_str("{}"),
            }
        }
        paths.insert(path);
    }
    assert!(paths.len() > 20, "found too few routes: {paths:?}");
    paths
}

/// The document's paths by shape, with their templates.
fn documented_paths(doc: &Value) -> BTreeMap<String, String> {
    doc["paths"]
        .as_object()
        .expect("paths")
        .keys()
        .map(|t| (shape(t), t.clone()))
        .collect()
}

/// The operations of a path item, lower case.
fn operations(item: &Value) -> BTreeSet<String> {
    METHODS
        .iter()
        .filter(|m| item.get(**m).is_some())
        .map(|m| m.to_string())
        .collect()
}

/// Whether `path` (without its query) is an instance of `template`.
fn instance_of(path: &str, template: &str) -> bool {
    let (path, template) = (path.split('/'), template.split('/'));
    path.clone().count() == template.clone().count()
        && path
            .zip(template)
            .all(|(p, t)| p == t || (t.starts_with('{') && !p.is_empty()))
}

// ----- a JSON Schema checker -----------------------------------------------------------------

/// Checks values against the document's schemas. It knows the keywords the document uses and
/// panics at any other, so that a schema never passes unchecked for want of a keyword.
struct Schemas<'a> {
    doc: &'a Value,
}

impl<'a> Schemas<'a> {
    /// What a local `$ref` (`#/components/...`) points at.
    fn resolve(&self, reference: &str) -> &'a Value {
        let pointer = reference
            .strip_prefix('#')
            .unwrap_or_else(|| panic!("not a local $ref: {reference}"));
        self.doc
            .pointer(pointer)
            .unwrap_or_else(|| panic!("$ref {reference} points at nothing"))
    }

    /// An object that may be a `$ref`, resolved.
    fn deref(&self, v: &'a Value) -> &'a Value {
        match v.get("$ref").and_then(Value::as_str) {
            Some(r) => self.deref(self.resolve(r)),
            None => v,
        }
    }

    /// Pushes onto `out` every way `value` (at JSON path `at`) breaks `schema`.
    fn errors(&self, schema: &Value, value: &Value, at: &str, out: &mut Vec<String>) {
        let schema = schema
            .as_object()
            .unwrap_or_else(|| panic!("a schema is an object: {schema}"));
        let object = value.as_object();
        for (keyword, arg) in schema {
            match keyword.as_str() {
                "$ref" => self.errors(self.resolve(arg.as_str().expect("$ref")), value, at, out),
                "type" => {
                    let types: Vec<&str> = match arg {
                        Value::String(t) => vec![t.as_str()],
                        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
                        _ => panic!("type: {arg}"),
                    };
                    if !types.iter().any(|t| has_type(value, t)) {
                        out.push(format!("{at}: {value} is not of type {arg}"));
                    }
                }
                "enum" => {
                    if !arg.as_array().expect("enum").contains(value) {
                        out.push(format!("{at}: {value} is not one of {arg}"));
                    }
                }
                "properties" => {
                    for (name, sub) in arg.as_object().expect("properties") {
                        if let Some(v) = object.and_then(|o| o.get(name)) {
                            self.errors(sub, v, &format!("{at}.{name}"), out);
                        }
                    }
                }
                "required" => {
                    for name in arg.as_array().expect("required") {
                        let name = name.as_str().expect("a property name");
                        if object.is_some_and(|o| !o.contains_key(name)) {
                            out.push(format!("{at}: `{name}` is missing"));
                        }
                    }
                }
                "additionalProperties" => {
                    let declared = schema.get("properties").and_then(Value::as_object);
                    for (name, v) in object.into_iter().flatten() {
                        if declared.is_some_and(|d| d.contains_key(name)) {
                            continue;
                        }
                        match arg {
                            Value::Bool(true) => {}
                            Value::Bool(false) => out.push(format!("{at}: `{name}` is unexpected")),
                            sub => self.errors(sub, v, &format!("{at}.{name}"), out),
                        }
                    }
                }
                "items" => {
                    for (i, v) in value.as_array().into_iter().flatten().enumerate() {
                        self.errors(arg, v, &format!("{at}[{i}]"), out);
                    }
                }
                "minItems" | "maxItems" => {
                    let bound = arg.as_u64().expect("a count") as usize;
                    if let Some(items) = value.as_array() {
                        let ok = if keyword == "minItems" {
                            items.len() >= bound
                        } else {
                            items.len() <= bound
                        };
                        if !ok {
                            out.push(format!(
                                "{at}: {} items break {keyword} {bound}",
                                items.len()
                            ));
                        }
                    }
                }
                "minimum" | "maximum" => {
                    let bound = arg.as_f64().expect("a number");
                    if let Some(n) = value.as_f64() {
                        let ok = if keyword == "minimum" {
                            n >= bound
                        } else {
                            n <= bound
                        };
                        if !ok {
                            out.push(format!("{at}: {n} breaks {keyword} {bound}"));
                        }
                    }
                }
                "format" => match arg.as_str() {
                    Some("date-time") => {
                        if let Some(s) = value.as_str()
                            && humantime::parse_rfc3339(s).is_err()
                        {
                            out.push(format!("{at}: {s} is not an RFC 3339 UTC time"));
                        }
                    }
                    _ => panic!("the checker does not know the format {arg}"),
                },
                "description" | "default" => {}
                other => panic!(
                    "the checker does not know the keyword `{other}`: teach it before the \
                     document uses it"
                ),
            }
        }
    }

    /// Asserts that `value` matches `schema`.
    #[track_caller]
    fn check(&self, schema: &Value, value: &Value, what: &str) {
        let mut errors = Vec::new();
        self.errors(schema, value, "$", &mut errors);
        assert!(
            errors.is_empty(),
            "{what}: not as the document says:\n{}\nin {value}",
            errors.join("\n")
        );
    }

    /// Asserts that `value` matches the component schema `name`.
    #[track_caller]
    fn check_named(&self, name: &str, value: &Value, what: &str) {
        let schema = json!({ "$ref": format!("#/components/schemas/{name}") });
        self.check(&schema, value, what);
    }
}

fn has_type(v: &Value, t: &str) -> bool {
    match t {
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "integer" => v.is_u64() || v.is_i64(),
        "number" => v.is_number(),
        "boolean" => v.is_boolean(),
        "null" => v.is_null(),
        other => panic!("no JSON Schema type {other}"),
    }
}

#[test]
fn the_checker_finds_what_breaks_a_schema() {
    let doc = document();
    let schemas = Schemas { doc: &doc };
    let mut errors = Vec::new();
    let mailbox = json!({"$ref": "#/components/schemas/Mailbox"});
    for (value, expect) in [
        (json!({"name": "inbox", "total": 1, "unread": 0}), 0),
        (json!({"name": "inbox", "total": 1}), 1),
        (
            json!({"name": "inbox", "total": 1, "unread": 0, "extra": 1}),
            1,
        ),
        (json!({"name": null, "total": -1, "unread": 0.5}), 3),
        (json!([]), 1),
    ] {
        errors.clear();
        schemas.errors(&mailbox, &value, "$", &mut errors);
        assert_eq!(errors.len(), expect, "{value}: {errors:?}");
    }
    let address = json!({"$ref": "#/components/schemas/Address"});
    errors.clear();
    schemas.errors(
        &address,
        &json!({"name": null, "address": "a@b"}),
        "$",
        &mut errors,
    );
    assert!(errors.is_empty(), "a null name is an Address's: {errors:?}");
    let user = json!({"$ref": "#/components/schemas/User"});
    let bad_time = json!({"id": "1", "email": "a@b", "display_name": "", "created_at": "today"});
    errors.clear();
    schemas.errors(&user, &bad_time, "$", &mut errors);
    assert_eq!(errors.len(), 1, "{errors:?}");
}

// ----- the document on its own ---------------------------------------------------------------

/// Every `$ref` anywhere in `v`.
fn refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
    match v {
        Value::Object(o) => {
            if let Some(r) = o.get("$ref").and_then(Value::as_str) {
                out.push(r);
            }
            o.values().for_each(|v| refs(v, out));
        }
        Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
        _ => {}
    }
}

#[test]
fn the_document_holds_together() {
    let doc = document();
    let schemas = Schemas { doc: &doc };
    assert!(
        doc["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1.")),
        "openapi: {}",
        doc["openapi"]
    );
    assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
    let mut all = Vec::new();
    refs(&doc, &mut all);
    for r in all {
        schemas.resolve(r);
    }

    let mut problems = Vec::new();
    let mut ids = BTreeSet::new();
    for (template, item) in doc["paths"].as_object().unwrap() {
        let in_path: BTreeSet<String> = template
            .split('{')
            .skip(1)
            .map(|p| p.split('}').next().unwrap().to_owned())
            .collect();
        for method in operations(item) {
            let op = &item[&method];
            let what = format!("{} {template}", method.to_uppercase());
            match op["operationId"].as_str() {
                Some(id) if ids.insert(id.to_owned()) => {}
                id => problems.push(format!("{what}: operationId {id:?} missing or not unique")),
            }
            if !op["security"].is_array() {
                problems.push(format!("{what}: no `security` (`[]` for none)"));
            }
            let params = item["parameters"].as_array().into_iter().flatten();
            let params = params.chain(op["parameters"].as_array().into_iter().flatten());
            let declared: BTreeSet<String> = params
                .map(|p| schemas.deref(p))
                .filter(|p| p["in"] == "path")
                .map(|p| p["name"].as_str().unwrap().to_owned())
                .collect();
            if declared != in_path {
                problems.push(format!(
                    "{what}: path parameters {declared:?}, the template has {in_path:?}"
                ));
            }
            let responses = op["responses"].as_object().unwrap();
            if !responses.contains_key("default") {
                problems.push(format!(
                    "{what}: no `default` response (the error envelope)"
                ));
            }
            for (status, response) in responses {
                let response = schemas.deref(response);
                if method == "head" {
                    if response.get("content").is_some() {
                        problems.push(format!("{what}: {status} has a body"));
                    }
                } else if !status.starts_with('2') {
                    let schema = &response["content"]["application/json"]["schema"];
                    if schema["$ref"] != "#/components/schemas/Error" {
                        problems.push(format!("{what}: {status} is not the error envelope"));
                    }
                }
            }
        }
    }
    // What serde flattens into a whole message: a part's fields stand in the whole, the same.
    let schema = |name: &str| &doc["components"]["schemas"][name];
    for (part, whole) in [
        ("Summary", "Message"),
        ("Message", "WaitedMessage"),
        ("AdminSummary", "AdminMessage"),
        ("AdminMessage", "WaitedAdminMessage"),
    ] {
        for (name, field) in schema(part)["properties"].as_object().unwrap() {
            if schema(whole)["properties"].get(name) != Some(field) {
                problems.push(format!("{whole}.{name} is not {part}.{name}"));
            }
        }
        for name in schema(part)["required"].as_array().unwrap() {
            if !schema(whole)["required"].as_array().unwrap().contains(name) {
                problems.push(format!("{whole} does not require {name}, as {part} does"));
            }
        }
    }
    assert!(problems.is_empty(), "{DOCUMENT}:\n{}", problems.join("\n"));
}

// ----- the document and the router -----------------------------------------------------------

#[tokio::test]
async fn the_router_and_the_document_have_the_same_paths_and_methods() {
    let doc = document();
    let schemas = Schemas { doc: &doc };
    let documented = documented_paths(&doc);
    let routed = router_paths();
    let undocumented: Vec<_> = routed
        .iter()
        .filter(|shape| !documented.contains_key(*shape))
        .collect();
    let unrouted: Vec<_> = documented
        .iter()
        .filter(|(shape, _)| !routed.contains(*shape))
        .map(|(_, template)| template)
        .collect();
    assert!(
        undocumented.is_empty(),
        "routes missing from {DOCUMENT}: {undocumented:?}"
    );
    assert!(
        unrouted.is_empty(),
        "paths in {DOCUMENT} that no route serves: {unrouted:?}"
    );

    let srv = TestServer::start().await;
    let mut problems = Vec::new();
    for (shape, template) in &documented {
        // A method no path takes: the 405 lists the ones it does.
        let path = shape.replace("{}", "1");
        let r = send(srv.request("TRACE", &path, None, None)).await;
        assert_eq!(r.status, 405, "TRACE {path}: {}", r.text);
        schemas.check_named("Error", &r.json, &format!("TRACE {path}"));
        let allowed: BTreeSet<String> = r
            .header("allow")
            .unwrap_or_else(|| panic!("TRACE {path}: no Allow header"))
            .split(',')
            .map(|m| m.trim().to_ascii_lowercase())
            .collect();
        let ops = operations(&doc["paths"][template]);
        if allowed != ops {
            problems.push(format!(
                "{template}: the server allows {allowed:?}, the document has {ops:?}"
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    srv.stop().await;
}

#[tokio::test]
async fn the_server_serves_the_document_as_written() {
    let srv = TestServer::start().await;
    let r = srv.reply("GET", "/api/v1/openapi.json", None, None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.text, read(DOCUMENT));
    assert!(
        r.json["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1."))
    );
    srv.stop().await;
}

#[tokio::test]
async fn operations_that_need_a_token_refuse_a_request_without_one() {
    let doc = document();
    let srv = ready_server(test_config()).await;
    let mut problems = Vec::new();
    for (template, item) in doc["paths"].as_object().unwrap() {
        let path = shape(template).replace("{}", "1");
        for method in operations(item) {
            let schemes: Vec<&str> = item[&method]["security"]
                .as_array()
                .unwrap()
                .iter()
                .flat_map(|req| req.as_object().unwrap().keys().map(String::as_str))
                .collect();
            let expect = match schemes.as_slice() {
                [] => None,
                ["session"] => Some("missing_token"),
                ["admin"] => Some("admin_token_required"),
                other => panic!("{method} {template}: security {other:?}"),
            };
            let r = send(srv.request(&method.to_uppercase(), &path, None, None)).await;
            let got = (r.status == 401).then(|| r.json["error"]["code"].as_str().unwrap_or(""));
            if got != expect {
                problems.push(format!(
                    "{} {path} without a token: {} {}; the document's security {schemes:?}",
                    method.to_uppercase(),
                    r.status,
                    r.text
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    srv.stop().await;
}

/// Starts a server and waits until `/readyz` says it is ready, so that every operation
/// answers as it does once started.
async fn ready_server(config: fakemail::config::Config) -> TestServer {
    let srv = TestServer::start_with(config, None).await;
    wait_until("the server is ready", || async {
        srv.call("GET", "/readyz", None, None).await.0 == 200
    })
    .await;
    srv
}

// ----- real answers --------------------------------------------------------------------------

/// Sends requests and checks each answer against the document; remembers which operations
/// it has seen answer.
struct Api<'a> {
    srv: &'a TestServer,
    doc: &'a Value,
    schemas: Schemas<'a>,
    seen: BTreeSet<(String, String)>,
}

impl<'a> Api<'a> {
    /// The documented operation `method` of the path `path` (a query left aside), with its
    /// template.
    fn operation(&self, method: &str, path: &str) -> (&'a str, &'a Value) {
        let path = path.split('?').next().unwrap();
        let (template, item) = self.doc["paths"]
            .as_object()
            .unwrap()
            .iter()
            .filter(|(template, _)| instance_of(path, template))
            // The most literal: `/a/b` before `/a/{x}`.
            .min_by_key(|(template, _)| template.matches('{').count())
            .unwrap_or_else(|| panic!("{DOCUMENT} has no path for {path}"));
        let op = &item[method.to_ascii_lowercase()];
        assert!(op.is_object(), "{DOCUMENT} has no {method} {template}");
        (template, op)
    }

    /// The documented response to `status`: its own, or for an error, `default`.
    fn response(&self, op: &'a Value, status: u16, what: &str) -> &'a Value {
        let responses = &op["responses"];
        let response = match responses.get(status.to_string()) {
            Some(r) => r,
            None if status >= 400 => &responses["default"],
            None => panic!("{what}: the document has no {status} response"),
        };
        self.schemas.deref(response)
    }

    /// Sends a request; checks its body, when it succeeded, against the operation's, and the
    /// answer against the documented response to its status: media type, headers and JSON.
    async fn call(
        &mut self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        let (template, op) = self.operation(method, path);
        let r = send(self.srv.request(method, path, token, body.clone())).await;
        let what = format!("{method} {path}: {}", r.status);
        if let (Some(body), true) = (&body, (200..300).contains(&r.status)) {
            let schema = &op["requestBody"]["content"]["application/json"]["schema"];
            assert!(schema.is_object(), "{what}: documented without a body");
            self.schemas
                .check(schema, body, &format!("{what}, request"));
        }
        let response = self.response(op, r.status, &what);
        let headers = response["headers"].as_object();
        for name in headers.into_iter().flat_map(|h| h.keys()) {
            assert!(r.header(name).is_some(), "{what}: no {name} header");
        }
        match response["content"].as_object() {
            None => assert!(r.text.is_empty(), "{what}: a body, documented without"),
            Some(content) => {
                let ct = r.header("content-type").unwrap_or_default();
                let essence = ct.split(';').next().unwrap().trim();
                let media = content
                    .get(essence)
                    .or_else(|| content.get("*/*"))
                    .unwrap_or_else(|| panic!("{what}: {ct} is none of {content:?}"));
                if essence == "application/json" {
                    let json: Value = serde_json::from_str(&r.text)
                        .unwrap_or_else(|e| panic!("{what}: not JSON ({e}): {}", r.text));
                    self.schemas.check(&media["schema"], &json, &what);
                }
            }
        }
        self.seen
            .insert((template.to_owned(), method.to_ascii_lowercase()));
        r
    }

    /// Like [`Api::call`], asserting the status; returns the JSON (Null for no body).
    async fn expect(
        &mut self,
        status: u16,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Value {
        let r = self.call(method, path, token, body).await;
        assert_eq!(r.status, status, "{method} {path}: {}", r.text);
        r.json
    }

    /// Opens an event stream (which must answer 200 `text/event-stream`, as documented).
    async fn stream(&mut self, path: &str, token: &str) -> Sse {
        let (template, op) = self.operation("GET", path);
        let response = self.response(op, 200, path);
        assert!(
            response["content"].get("text/event-stream").is_some(),
            "{path}: not documented as text/event-stream"
        );
        self.seen.insert((template.to_owned(), "get".to_owned()));
        Sse::open(self.srv, path, token, None).await
    }
}

/// The `token` of a login answer.
fn token(login: Value) -> String {
    login["token"].as_str().expect("a token").to_owned()
}

#[tokio::test]
async fn real_answers_match_the_document() {
    let doc = document();
    let mut config = test_config();
    config.admin_token = Some(ADMIN.into());
    config.service.chaos = true;
    let srv = ready_server(config).await;
    let mut api = Api {
        srv: &srv,
        doc: &doc,
        schemas: Schemas { doc: &doc },
        seen: BTreeSet::new(),
    };
    let admin = Some(ADMIN);

    // The service.
    for method in ["GET", "HEAD"] {
        api.expect(200, method, "/healthz", None, None).await;
        api.expect(200, method, "/readyz", None, None).await;
    }
    api.expect(200, "GET", "/api/v1/openapi.json", None, None)
        .await;
    api.expect(200, "GET", "/metrics", None, None).await;

    // Accounts.
    let (register, login) = ("/api/v1/auth/register", "/api/v1/auth/login");
    let alice = json!({"email": "alice@example.test", "password": PASSWORD});
    let named = json!({"email": "alice@example.test", "password": PASSWORD, "display_name": "A"});
    api.expect(201, "POST", register, None, Some(named)).await;
    api.expect(409, "POST", register, None, Some(alice.clone()))
        .await;
    let alice = token(api.expect(200, "POST", login, None, Some(alice)).await);
    let mut tokens = Vec::new();
    for email in ["bob@example.test", "carol@example.test"] {
        let body = json!({"email": email, "password": PASSWORD});
        api.expect(201, "POST", register, None, Some(body.clone()))
            .await;
        tokens.push(token(
            api.expect(200, "POST", login, None, Some(body)).await,
        ));
    }
    let wrong = json!({"email": "bob@example.test", "password": "not the password"});
    api.expect(401, "POST", login, None, Some(wrong)).await;
    let (alice, bob, carol) = (Some(&*alice), Some(&*tokens[0]), Some(&*tokens[1]));
    api.expect(200, "GET", "/api/v1/me", alice, None).await;
    api.expect(401, "GET", "/api/v1/me", None, None).await;
    let body = json!({"display_name": "Alice A."});
    api.expect(200, "PATCH", "/api/v1/me", alice, Some(body))
        .await;
    let new = "a new password of carol's";
    let body = json!({"current_password": PASSWORD, "new_password": new});
    api.expect(204, "POST", "/api/v1/me/password", carol, Some(body))
        .await;
    let body = json!({"password": new});
    api.expect(204, "DELETE", "/api/v1/me", carol, Some(body))
        .await;

    // Mail, as a user.
    let body = json!({
        "to": ["bob@example.test"], "cc": ["carol@example.test"], "bcc": ["dave@example.test"],
        "subject": "Lunch?", "text": "Hi Bob,\nnoon?", "html": "<p>Hi Bob, noon?</p>",
        "reply_to": "alice@example.test", "headers": {"X-Campaign": "spring"}
    });
    let sent = api
        .expect(201, "POST", "/api/v1/messages", alice, Some(body))
        .await;
    assert!(
        sent["bcc"].is_array(),
        "the sender's copy lists the Bcc: {sent}"
    );
    let body = json!({"to": [], "subject": "To nobody"});
    api.expect(422, "POST", "/api/v1/messages", alice, Some(body))
        .await;
    // Two recipients: the message outlives bob's copy.
    let to = ["bob@example.test", "erin@example.test"];
    let message = deliver(&srv, fixture("attachments.eml"), &to).await;

    api.expect(200, "GET", "/api/v1/mailboxes", bob, None).await;
    let body = json!({"name": "Receipts"});
    api.expect(201, "POST", "/api/v1/mailboxes", bob, Some(body))
        .await;
    let inbox = "/api/v1/mailboxes/inbox/messages";
    let page = api
        .expect(200, "GET", &format!("{inbox}?limit=1"), bob, None)
        .await;
    let copy = page["messages"][0]["id"].as_str().unwrap().to_owned();
    api.expect(422, "GET", &format!("{inbox}?unread=maybe"), bob, None)
        .await;
    let one = format!("/api/v1/messages/{copy}");
    let got = api.expect(200, "GET", &one, bob, None).await;
    assert!(
        got.get("bcc").is_none(),
        "only the sender's copy lists the Bcc: {got}"
    );
    api.expect(404, "GET", "/api/v1/messages/999999", bob, None)
        .await;
    api.expect(200, "GET", &format!("{one}/raw"), bob, None)
        .await;
    api.expect(200, "GET", &format!("{one}/attachments/0"), bob, None)
        .await;
    let body = json!({"read": true, "starred": true, "mailbox": "receipts"});
    api.expect(200, "PATCH", &one, bob, Some(body)).await;
    let since = "after=1970-01-01T00:00:00Z&timeout=0";
    let wait = format!("/api/v1/mailboxes/inbox/wait?{since}");
    api.expect(200, "GET", &wait, bob, None).await;
    let receipts = "/api/v1/mailboxes/Receipts";
    api.expect(409, "DELETE", receipts, bob, None).await;
    api.expect(204, "DELETE", &one, bob, None).await;
    api.expect(204, "DELETE", &format!("{one}?permanent=true"), bob, None)
        .await;
    api.expect(204, "DELETE", receipts, bob, None).await;
    api.expect(204, "DELETE", inbox, bob, None).await;

    // Event streams: the data of an event is the summary the document names.
    let mut user_events = api.stream("/api/v1/events", bob.unwrap()).await;
    let mut admin_events = api.stream("/api/v1/admin/events", ADMIN).await;
    let body = json!({"to": ["bob@example.test"], "subject": "Streamed"});
    api.expect(201, "POST", "/api/v1/messages", alice, Some(body))
        .await;
    for (events, schema) in [
        (&mut user_events, "Summary"),
        (&mut admin_events, "AdminSummary"),
    ] {
        let e = events.next().await;
        api.schemas.check_named(schema, &e.data, &e.event);
    }
    drop((user_events, admin_events));

    // The operator view.
    api.expect(200, "GET", "/api/v1/admin/messages?limit=10", admin, None)
        .await;
    let one = format!("/api/v1/admin/messages/{message}");
    api.expect(200, "GET", &one, admin, None).await;
    api.expect(200, "GET", &format!("{one}/raw"), admin, None)
        .await;
    api.expect(200, "GET", &format!("{one}/attachments/0"), admin, None)
        .await;
    api.expect(404, "GET", &format!("{one}/attachments/9"), admin, None)
        .await;
    api.expect(200, "GET", "/api/v1/admin/stats", admin, None)
        .await;
    api.expect(401, "GET", "/api/v1/admin/stats", bob, None)
        .await;
    let wait = "/api/v1/admin/wait";
    api.expect(200, "GET", &format!("{wait}?{since}"), admin, None)
        .await;
    api.expect(408, "GET", &format!("{wait}?timeout=0"), admin, None)
        .await;
    let body = json!({"older_than": "1d", "dry_run": true});
    api.expect(200, "POST", "/api/v1/admin/purge", admin, Some(body))
        .await;
    api.expect(204, "DELETE", &one, admin, None).await;
    api.expect(204, "DELETE", "/api/v1/admin/messages", admin, None)
        .await;

    // Fault injection.
    let chaos = "/api/v1/admin/chaos";
    api.expect(200, "GET", chaos, admin, None).await;
    let body = json!({"rule": "rcpt:451:4.3.0:50%:seed=7"});
    api.expect(201, "POST", &format!("{chaos}/rules"), admin, Some(body))
        .await;
    let body = json!({"rules": [
        {"stage": "api_send", "action": "reply", "code": 503, "next": 1},
        {"rule": "data:delay=2s"}
    ]});
    let view = api.expect(200, "PUT", chaos, admin, Some(body)).await;
    let body = json!({"to": ["bob@example.test"], "subject": "Refused"});
    let fault = api
        .expect(503, "POST", "/api/v1/messages", alice, Some(body))
        .await;
    assert_eq!(fault["error"]["code"], "injected_fault");
    let rule = format!("{chaos}/rules/{}", view["rules"][1]["id"]);
    api.expect(204, "DELETE", &rule, admin, None).await;
    api.expect(204, "DELETE", chaos, admin, None).await;

    // The end of a session.
    api.expect(204, "POST", "/api/v1/auth/logout", bob, None)
        .await;
    api.expect(401, "GET", "/api/v1/me", bob, None).await;

    let mut unseen = Vec::new();
    for (template, item) in doc["paths"].as_object().unwrap() {
        for method in operations(item) {
            if !api.seen.contains(&(template.clone(), method.clone())) {
                unseen.push(format!("{} {template}", method.to_uppercase()));
            }
        }
    }
    assert!(
        unseen.is_empty(),
        "operations this test never called; add a call, so that their answers are checked: \
         {unseen:?}"
    );
    srv.stop().await;
}
