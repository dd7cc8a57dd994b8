//! The route table: every path the REST API serves, as a template, with the methods it serves.
//! One fact in one place: the router answers any other method on the path with a 405 whose
//! `Allow` is [`Route::allow`], the handlers' OpenAPI operations are at [`Route::template`], and
//! the metrics count each request under its route's template.
//!
//! The web UI's pages and files ([`PAGES`]) have routes too, for the 405s and the metrics, but
//! no operations in the API's document.
//!
//! `filters.rs` (and `ui/mod.rs`) still spell each path out in their `warp::path!`; the
//! router's own tests check that it serves every template here, with these methods and no
//! others.

/// A route of the REST API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    /// The path, `{name}` standing for one path segment.
    pub template: &'static str,
    /// The methods served, as an `Allow` header lists them.
    pub allow: &'static str,
}

impl Route {
    const fn new(template: &'static str, allow: &'static str) -> Route {
        Route { template, allow }
    }

    /// The methods served, one by one.
    pub fn methods(&self) -> impl Iterator<Item = &'static str> {
        self.allow.split(", ")
    }
}

pub const HEALTHZ: Route = Route::new("/healthz", "GET, HEAD");
pub const READYZ: Route = Route::new("/readyz", "GET, HEAD");
pub const METRICS: Route = Route::new("/metrics", "GET");
pub const OPENAPI: Route = Route::new("/api/v1/openapi.json", "GET");
pub const REGISTER: Route = Route::new("/api/v1/auth/register", "POST");
pub const LOGIN: Route = Route::new("/api/v1/auth/login", "POST");
pub const LOGOUT: Route = Route::new("/api/v1/auth/logout", "POST");
pub const SESSION: Route = Route::new("/api/v1/auth/session", "POST, DELETE");
pub const ME: Route = Route::new("/api/v1/me", "GET, PATCH, DELETE");
pub const PASSWORD: Route = Route::new("/api/v1/me/password", "POST");
pub const MESSAGES: Route = Route::new("/api/v1/messages", "POST");
pub const MESSAGE: Route = Route::new("/api/v1/messages/{id}", "GET, PATCH, DELETE");
pub const MESSAGE_HTML: Route = Route::new("/api/v1/messages/{id}/html", "GET");
pub const MESSAGE_RAW: Route = Route::new("/api/v1/messages/{id}/raw", "GET");
pub const MESSAGE_ATTACHMENT: Route =
    Route::new("/api/v1/messages/{id}/attachments/{index}", "GET");
pub const MAILBOXES: Route = Route::new("/api/v1/mailboxes", "GET, POST");
pub const MAILBOX: Route = Route::new("/api/v1/mailboxes/{name}", "DELETE");
pub const MAILBOX_MESSAGES: Route = Route::new("/api/v1/mailboxes/{name}/messages", "GET, DELETE");
pub const MAILBOX_WAIT: Route = Route::new("/api/v1/mailboxes/{name}/wait", "GET");
pub const EVENTS: Route = Route::new("/api/v1/events", "GET");
pub const ADMIN_PURGE: Route = Route::new("/api/v1/admin/purge", "POST");
pub const ADMIN_SESSION: Route = Route::new("/api/v1/admin/session", "POST, DELETE");
pub const ADMIN_MESSAGES: Route = Route::new("/api/v1/admin/messages", "GET, DELETE");
pub const ADMIN_MESSAGE: Route = Route::new("/api/v1/admin/messages/{id}", "GET, DELETE");
pub const ADMIN_MESSAGE_HTML: Route = Route::new("/api/v1/admin/messages/{id}/html", "GET");
pub const ADMIN_MESSAGE_RAW: Route = Route::new("/api/v1/admin/messages/{id}/raw", "GET");
pub const ADMIN_MESSAGE_ATTACHMENT: Route =
    Route::new("/api/v1/admin/messages/{id}/attachments/{index}", "GET");
pub const ADMIN_MESSAGE_TAGS: Route = Route::new("/api/v1/admin/messages/{id}/tags", "PUT");
pub const ADMIN_TAGS: Route = Route::new("/api/v1/admin/tags", "GET");
pub const ADMIN_TAG: Route = Route::new("/api/v1/admin/tags/{tag}", "PUT, DELETE");
pub const ADMIN_STATS: Route = Route::new("/api/v1/admin/stats", "GET");
pub const ADMIN_WAIT: Route = Route::new("/api/v1/admin/wait", "GET");
pub const ADMIN_EVENTS: Route = Route::new("/api/v1/admin/events", "GET");
pub const ADMIN_CHAOS: Route = Route::new("/api/v1/admin/chaos", "GET, PUT, DELETE");
pub const ADMIN_CHAOS_RULES: Route = Route::new("/api/v1/admin/chaos/rules", "POST");
pub const ADMIN_CHAOS_RULE: Route = Route::new("/api/v1/admin/chaos/rules/{id}", "DELETE");

/// The web UI's page of a user's mail (`src/ui`).
pub const UI_PAGE: Route = Route::new("/", "GET, HEAD");
/// The web UI's page of the operator's view.
pub const UI_ADMIN: Route = Route::new("/admin", "GET, HEAD");
/// The web UI's scripts, style sheet and icon.
pub const UI_FILE: Route = Route::new("/ui/{file}", "GET, HEAD");

/// The web UI's routes, sorted by template; none with `--no-ui`.
pub const PAGES: [Route; 3] = [UI_PAGE, UI_ADMIN, UI_FILE];

/// Every route of the API, sorted by template.
pub const ROUTES: [Route; 36] = [
    ADMIN_CHAOS,
    ADMIN_CHAOS_RULES,
    ADMIN_CHAOS_RULE,
    ADMIN_EVENTS,
    ADMIN_MESSAGES,
    ADMIN_MESSAGE,
    ADMIN_MESSAGE_ATTACHMENT,
    ADMIN_MESSAGE_HTML,
    ADMIN_MESSAGE_RAW,
    ADMIN_MESSAGE_TAGS,
    ADMIN_PURGE,
    ADMIN_SESSION,
    ADMIN_STATS,
    ADMIN_TAGS,
    ADMIN_TAG,
    ADMIN_WAIT,
    LOGIN,
    LOGOUT,
    REGISTER,
    SESSION,
    EVENTS,
    MAILBOXES,
    MAILBOX,
    MAILBOX_MESSAGES,
    MAILBOX_WAIT,
    ME,
    PASSWORD,
    MESSAGES,
    MESSAGE,
    MESSAGE_ATTACHMENT,
    MESSAGE_HTML,
    MESSAGE_RAW,
    OPENAPI,
    HEALTHZ,
    METRICS,
    READYZ,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tables_are_sorted_and_each_route_is_in_them_once() {
        for table in [&ROUTES[..], &PAGES[..]] {
            let templates: Vec<&str> = table.iter().map(|r| r.template).collect();
            assert!(templates.is_sorted(), "{templates:?}");
            assert!(templates.windows(2).all(|w| w[0] != w[1]), "{templates:?}");
        }
        let api: Vec<&str> = ROUTES.iter().map(|r| r.template).collect();
        assert!(PAGES.iter().all(|p| !api.contains(&p.template)));
        for route in ROUTES.iter().chain(&PAGES) {
            assert!(route.template.starts_with('/'), "{route:?}");
            let methods: Vec<&str> = route.methods().collect();
            assert!(!methods.is_empty() && methods.iter().all(|m| !m.is_empty()));
        }
    }
}
