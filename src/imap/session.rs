//! The IMAP session: takes parsed commands (imap-codec's types) and returns the responses,
//! calling the service for everything it knows; no sockets here, so a dialogue can be driven
//! in a test without one. The connection (`connection.rs`) frames the wire with imap-next and
//! tells the session of the events of its selected mailbox.

use std::num::NonZeroU32;

use imap_next::imap_types::IntoStatic;
use imap_next::imap_types::auth::AuthMechanism;
use imap_next::imap_types::command::{Command, CommandBody};
use imap_next::imap_types::core::{
    Atom, Charset, IString, NString, Quoted, QuotedChar, Tag, Text, Vec1,
};
use imap_next::imap_types::extensions::enable::CapabilityEnable;
use imap_next::imap_types::extensions::utf8::Utf8Kind;
use imap_next::imap_types::fetch::{MessageDataItem, MessageDataItemName};
use imap_next::imap_types::flag::{Flag, FlagFetch, FlagNameAttribute, FlagPerm, StoreType};
use imap_next::imap_types::mailbox::{ListMailbox, Mailbox};
use imap_next::imap_types::response::{
    Capability, Code, Data, Greeting, Response, Status, StatusBody, StatusKind, Tagged,
};
use imap_next::imap_types::search::SearchKey;
use imap_next::imap_types::sequence::{SeqOrUid, Sequence, SequenceSet};
use imap_next::imap_types::status::{StatusDataItem, StatusDataItemName};

use imap_next::imap_types::extensions::binary::LiteralOrLiteral8;
use imap_next::imap_types::extensions::uidplus::{UidElement, UidSet};

use crate::error::Error;
use crate::service::imap::{Copy, FlagChange, Folder, FolderRef, Special, UidEntry, Want};
use crate::service::{Service, User};
use crate::time::Timestamp;

use super::{fetch, utf7};

/// What the connection does once the responses are sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum After {
    Continue,
    /// Upgrade to TLS now (STARTTLS accepted).
    StartTls,
    /// Close the connection (LOGOUT).
    Close,
}

/// The responses to one command.
#[derive(Debug)]
pub struct Answer {
    pub responses: Vec<Response<'static>>,
    pub after: After,
}

/// The mailbox a session has selected.
#[derive(Debug)]
struct Selected {
    folder: FolderRef,
    read_only: bool,
    /// Every copy the client knows of, in UID (and so sequence number) order.
    copies: Vec<UidEntry>,
    /// Copies with UIDs above this are `\Recent` for this session.
    recent_above: u32,
    /// The highest UID the client has been told of.
    last_uid: u32,
    /// Entries the service said were deleted, not yet told as EXPUNGE.
    gone: Vec<u64>,
    /// Entries the service said had new flags, not yet told as FETCH.
    flagged: Vec<u64>,
    /// Entries whose new flags this session changed itself (and answered for): the next
    /// flag event of each is its own and is not told again.
    own_flags: Vec<u64>,
    /// Events were missed: compare with the store at the next chance.
    lagged: bool,
}

enum State {
    NotAuthenticated,
    Authenticated(User),
    Selected(User, Selected),
    Logout,
}

/// One IMAP session.
pub struct Session {
    service: Service,
    state: State,
    /// STARTTLS can be offered (a certificate exists and TLS is not on yet).
    tls_offered: bool,
    /// Logged in as the operator: the read-only view of all mail.
    admin: bool,
    /// The client enabled `UTF8=ACCEPT` (RFC 6855): mailbox names travel as UTF-8, not in
    /// modified UTF-7.
    utf8: bool,
}

/// The user name of the operator, whose password is the admin token.
pub const ADMIN: &str = "admin";

/// The name clients see for a service mailbox name.
pub fn imap_name(name: &str) -> String {
    match name {
        "inbox" => "INBOX".into(),
        "sent" => "Sent".into(),
        "archive" => "Archive".into(),
        "trash" => "Trash".into(),
        other => other.into(),
    }
}

/// The service name of a system mailbox a name stands for, in any letter case.
fn service_mailbox_id(name: &str) -> Option<&'static str> {
    ["inbox", "sent", "archive", "trash"]
        .into_iter()
        .find(|s| s.eq_ignore_ascii_case(name.trim()))
}

/// The service's name for the mailbox a client names: in modified UTF-7 unless the client
/// enabled `utf8` (a name that is not well-formed modified UTF-7 is taken as it is, and so
/// names no mailbox with characters outside US-ASCII).
fn service_name(utf8: bool, mailbox: &Mailbox<'_>) -> String {
    match mailbox {
        Mailbox::Inbox => "inbox".into(),
        Mailbox::Other(o) => {
            let name = String::from_utf8_lossy(o.as_ref());
            match utf8 {
                true => name.into_owned(),
                false => utf7::decode(&name).unwrap_or_else(|| name.into_owned()),
            }
        }
    }
}

/// How a mailbox name (as [`imap_name`] gives it) travels to the client: in modified UTF-7
/// unless the client enabled `utf8`.
fn wire_name(utf8: bool, name: String) -> String {
    match utf8 {
        true => name,
        false => utf7::encode(&name),
    }
}

fn text(s: impl Into<String>) -> Text<'static> {
    Text::try_from(s.into()).unwrap_or_else(|_| Text::unvalidated("done"))
}

fn status(
    tag: Option<Tag<'static>>,
    kind: StatusKind,
    code: Option<Code<'static>>,
    t: impl Into<String>,
) -> Response<'static> {
    let body = StatusBody {
        kind,
        code,
        text: text(t),
    };
    Response::Status(match tag {
        Some(tag) => Status::Tagged(Tagged { tag, body }),
        None => Status::Untagged(body),
    })
}

/// NO [TRYCREATE]: the target mailbox does not exist (RFC 3501 6.3.11).
fn try_create(tag: Tag<'static>) -> Response<'static> {
    status(
        Some(tag),
        StatusKind::No,
        Some(Code::TryCreate),
        "no such mailbox",
    )
}

/// The COPYUID code of UIDPLUS (RFC 4315) for these (source, destination) UID pairs.
fn copy_uid(validity: u32, pairs: &[(u32, u32)]) -> Option<Code<'static>> {
    let set = |f: fn(&(u32, u32)) -> u32| {
        UidSet(Vec1::unvalidated(
            pairs.iter().map(|p| UidElement::Single(nz(f(p)))).collect(),
        ))
    };
    (!pairs.is_empty()).then(|| Code::CopyUid {
        uid_validity: nz(validity),
        source: set(|p| p.0),
        destination: set(|p| p.1),
    })
}

/// A refused login: NO with a response code of RFC 5530.
fn refused(tag: Tag<'static>, code: &'static [u8], t: &str) -> Response<'static> {
    let code = Code::Other(imap_next::imap_types::response::CodeOther::unvalidated(
        code,
    ));
    status(Some(tag), StatusKind::No, Some(code), t)
}

fn nz(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN)
}

/// The capabilities: IMAP4rev1 and the extensions clients expect.
fn capabilities(tls_offered: bool, authenticated: bool) -> Vec1<Capability<'static>> {
    let mut caps = vec![Capability::Imap4Rev1];
    if tls_offered {
        caps.push(Capability::StartTls);
    }
    if !authenticated {
        caps.push(Capability::Auth(AuthMechanism::Plain));
        caps.push(Capability::SaslIr);
    }
    caps.extend([
        Capability::LiteralPlus,
        Capability::UidPlus,
        Capability::Move,
        Capability::Idle,
        Capability::Unselect,
        Capability::Enable,
        Capability::Id,
        Capability::Namespace,
        Capability::Utf8(Utf8Kind::Accept),
    ]);
    Vec1::unvalidated(caps)
}

impl Session {
    /// A new session; `tls_offered` when STARTTLS can be offered.
    pub fn new(service: Service, tls_offered: bool) -> Session {
        Session {
            service,
            state: State::NotAuthenticated,
            tls_offered,
            admin: false,
            utf8: false,
        }
    }

    /// The greeting, with the capabilities.
    pub fn greeting(&self) -> Greeting<'static> {
        Greeting {
            kind: imap_next::imap_types::response::GreetingKind::Ok,
            code: Some(Code::Capability(capabilities(self.tls_offered, false))),
            text: text("fakemail IMAP ready"),
        }
    }

    /// TLS is on: STARTTLS is no longer offered.
    pub fn tls_started(&mut self) {
        self.tls_offered = false;
    }

    /// The selected mailbox, whose events the connection should pass on.
    pub fn selected(&self) -> Option<FolderRef> {
        match &self.state {
            State::Selected(_, s) => Some(s.folder),
            _ => None,
        }
    }

    /// The service said a copy of the selected mailbox was deleted.
    pub fn note_gone(&mut self, entry: u64) {
        if let State::Selected(_, s) = &mut self.state {
            s.gone.push(entry);
        }
    }

    /// The service said the flags of a copy of the selected mailbox changed.
    pub fn note_flagged(&mut self, entry: u64) {
        if let State::Selected(_, s) = &mut self.state {
            match s.own_flags.iter().position(|e| *e == entry) {
                Some(i) => {
                    s.own_flags.swap_remove(i);
                }
                None if !s.flagged.contains(&entry) => s.flagged.push(entry),
                None => {}
            }
        }
    }

    /// This session changed the flags of the copies at these UIDs: their events are its own.
    fn note_own_flags(&mut self, uids: impl IntoIterator<Item = u32>) {
        if let State::Selected(_, s) = &mut self.state {
            for uid in uids {
                if let Ok(i) = s.copies.binary_search_by_key(&uid, |u| u.uid) {
                    s.own_flags.push(s.copies[i].entry);
                }
            }
        }
    }

    /// Events of the selected mailbox were missed.
    pub fn note_lagged(&mut self) {
        if let State::Selected(_, s) = &mut self.state {
            s.lagged = true;
            // The events of this session's own changes may be among those missed.
            s.own_flags.clear();
        }
    }

    /// Whether the session has ended (LOGOUT).
    pub fn ended(&self) -> bool {
        matches!(self.state, State::Logout)
    }

    /// AUTHENTICATE PLAIN with its (decoded) response: the tagged status.
    pub async fn authenticate_plain(
        &mut self,
        tag: Tag<'static>,
        response: &[u8],
    ) -> Response<'static> {
        if !matches!(self.state, State::NotAuthenticated) {
            return status(Some(tag), StatusKind::Bad, None, "already authenticated");
        }
        // authzid NUL authcid NUL passwd (RFC 4616); an authzid must be the authcid.
        let parts: Vec<&[u8]> = response.split(|b| *b == 0).collect();
        let [authz, user, pass] = parts[..] else {
            return status(Some(tag), StatusKind::Bad, None, "malformed PLAIN response");
        };
        let (user, pass, authz) = (
            String::from_utf8_lossy(user).into_owned(),
            String::from_utf8_lossy(pass).into_owned(),
            String::from_utf8_lossy(authz).into_owned(),
        );
        if !authz.is_empty() && !authz.eq_ignore_ascii_case(&user) {
            return refused(tag, b"AUTHORIZATIONFAILED", "no proxy authorization");
        }
        self.login(tag, &user, &pass).await
    }

    async fn login(&mut self, tag: Tag<'static>, user: &str, pass: &str) -> Response<'static> {
        // The operator: no account can be called `admin` (account names are addresses).
        if user.eq_ignore_ascii_case(ADMIN) && self.service.check_admin(Some(pass)).is_ok() {
            self.admin = true;
            self.state = State::Authenticated(User {
                id: 0,
                email: ADMIN.into(),
                display_name: String::new(),
                created_at: Timestamp(0),
            });
            return status(
                Some(tag),
                StatusKind::Ok,
                Some(Code::Capability(capabilities(self.tls_offered, true))),
                "logged in: all mail, read-only",
            );
        }
        match self.service.verify_password(user, pass).await {
            Ok(u) => {
                self.state = State::Authenticated(u);
                status(
                    Some(tag),
                    StatusKind::Ok,
                    Some(Code::Capability(capabilities(self.tls_offered, true))),
                    "logged in",
                )
            }
            Err(Error::TooManyAttempts { .. }) => refused(
                tag,
                b"UNAVAILABLE",
                "too many failed logins; try again later",
            ),
            Err(_) => refused(tag, b"AUTHENTICATIONFAILED", "invalid credentials"),
        }
    }

    /// Handles one command.
    pub async fn command(&mut self, command: Command<'static>) -> Answer {
        let tag = command.tag.clone();
        let mut out = Vec::new();
        let mut after = After::Continue;
        let result = self.dispatch(command, &mut out, &mut after).await;
        let done = match result {
            Ok(r) => r,
            Err(e) => status(Some(tag), StatusKind::No, no_code(&e), no_text(&e)),
        };
        out.push(done);
        Answer {
            responses: out,
            after,
        }
    }

    /// What the session tells between commands or while idling: mail arrived (EXISTS), flags
    /// changed elsewhere (FETCH), and, when `expunge` is allowed, copies gone (EXPUNGE).
    pub async fn updates(&mut self, expunge: bool) -> Vec<Response<'static>> {
        let mut out = Vec::new();
        let _ = self.sync(expunge, &mut out).await;
        out
    }

    async fn sync(&mut self, expunge: bool, out: &mut Vec<Response<'static>>) -> crate::Result<()> {
        let State::Selected(_, s) = &mut self.state else {
            return Ok(());
        };
        if expunge {
            if s.lagged {
                // Compare with the store: what the client knows and is no longer there.
                let now = self.service.copies_after(s.folder, 0).await?;
                let live: std::collections::HashSet<u64> = now.iter().map(|u| u.entry).collect();
                s.gone.extend(
                    s.copies
                        .iter()
                        .filter(|u| !live.contains(&u.entry))
                        .map(|u| u.entry),
                );
                s.lagged = false;
            }
            for entry in std::mem::take(&mut s.gone) {
                if let Some(i) = s.copies.iter().position(|u| u.entry == entry) {
                    s.copies.remove(i);
                    out.push(Response::Data(Data::Expunge(nz(i as u32 + 1))));
                }
            }
        }
        let flagged: Vec<UidEntry> = std::mem::take(&mut s.flagged)
            .into_iter()
            .filter_map(|entry| s.copies.iter().find(|u| u.entry == entry).copied())
            .collect();
        let folder = s.folder;
        if !flagged.is_empty() {
            let mut changed = self
                .service
                .copies(folder, flagged, Want::default())
                .await?;
            changed.sort_by_key(|c| c.uid);
            for c in changed {
                let Some(seq) = self.seq_of(c.uid) else {
                    continue;
                };
                let items = vec![
                    MessageDataItem::Uid(nz(c.uid)),
                    MessageDataItem::Flags(self.flags_of(&c)),
                ];
                out.push(Response::Data(Data::Fetch {
                    seq: nz(seq),
                    items: Vec1::unvalidated(items),
                }));
            }
        }
        let State::Selected(_, s) = &mut self.state else {
            return Ok(());
        };
        let new = self.service.copies_after(s.folder, s.last_uid).await?;
        if let Some(last) = new.last() {
            s.last_uid = last.uid;
            s.copies.extend(new);
            out.push(Response::Data(Data::Exists(s.copies.len() as u32)));
            let recent = s.copies.iter().filter(|u| u.uid > s.recent_above).count();
            out.push(Response::Data(Data::Recent(recent as u32)));
        }
        Ok(())
    }

    async fn dispatch(
        &mut self,
        command: Command<'static>,
        out: &mut Vec<Response<'static>>,
        after: &mut After,
    ) -> crate::Result<Response<'static>> {
        let tag = command.tag;
        let ok = |t: &str| status(Some(tag.clone()), StatusKind::Ok, None, t);
        let bad = |t: &str| status(Some(tag.clone()), StatusKind::Bad, None, t);
        let authenticated = !matches!(self.state, State::NotAuthenticated);
        let lsub = matches!(command.body, CommandBody::Lsub { .. });
        let move_ = matches!(command.body, CommandBody::Move { .. });
        let unsubscribe = matches!(command.body, CommandBody::Unsubscribe { .. });
        match command.body {
            CommandBody::Capability => {
                out.push(Response::Data(Data::Capability(capabilities(
                    self.tls_offered,
                    authenticated,
                ))));
                Ok(ok("CAPABILITY done"))
            }
            CommandBody::Noop | CommandBody::Check => {
                self.sync(true, out).await?;
                Ok(ok("done"))
            }
            CommandBody::Logout => {
                if let Ok(bye) = Status::bye(None, "logging out") {
                    out.push(Response::Status(bye));
                }
                self.state = State::Logout;
                *after = After::Close;
                Ok(ok("LOGOUT done"))
            }
            CommandBody::StartTLS => {
                if !self.tls_offered || authenticated {
                    return Ok(bad("STARTTLS is not available now"));
                }
                *after = After::StartTls;
                Ok(ok("begin TLS now"))
            }
            CommandBody::Login { username, password } => {
                if authenticated {
                    return Ok(bad("already authenticated"));
                }
                let user = String::from_utf8_lossy(username.as_ref()).into_owned();
                let pass = String::from_utf8_lossy(password.declassify().as_ref()).into_owned();
                Ok(self.login(tag, &user, &pass).await)
            }
            CommandBody::Id { .. } => {
                if let (Ok(k), Ok(v)) = (IString::try_from("name"), NString::try_from("fakemail")) {
                    out.push(Response::Data(Data::Id {
                        parameters: Some(vec![(k, v)]),
                    }));
                }
                Ok(ok("ID done"))
            }
            _ if !authenticated => Ok(bad("log in first")),
            CommandBody::Enable { capabilities } => {
                let accept = CapabilityEnable::Utf8(Utf8Kind::Accept);
                let mut enabled = Vec::<CapabilityEnable<'static>>::new();
                if capabilities.as_ref().contains(&accept) {
                    self.utf8 = true;
                    enabled.push(accept);
                }
                out.push(Response::Data(Data::Enabled {
                    capabilities: enabled,
                }));
                Ok(ok("ENABLE done"))
            }
            CommandBody::Namespace => {
                use imap_next::imap_types::extensions::namespace::{Namespace, Namespaces};
                let personal: Namespaces<'static> = vec![Namespace {
                    prefix: IString::from(Quoted::unvalidated("")),
                    delimiter: Some(QuotedChar::unvalidated('/')),
                    extensions: vec![],
                }];
                out.push(Response::Data(Data::Namespace {
                    personal,
                    other: vec![],
                    shared: vec![],
                }));
                Ok(ok("NAMESPACE done"))
            }
            CommandBody::List {
                reference,
                mailbox_wildcard,
            }
            | CommandBody::Lsub {
                reference,
                mailbox_wildcard,
            } => {
                let pattern = format!(
                    "{}{}",
                    match &reference {
                        Mailbox::Inbox => "INBOX".to_owned(),
                        Mailbox::Other(o) => String::from_utf8_lossy(o.as_ref()).into_owned(),
                    },
                    match &mailbox_wildcard {
                        ListMailbox::Token(t) => String::from_utf8_lossy(t.as_ref()).into_owned(),
                        ListMailbox::String(s) => String::from_utf8_lossy(s.as_ref()).into_owned(),
                    }
                );
                let user = self.user().clone();
                let line = |items, mailbox| {
                    let delimiter = Some(QuotedChar::unvalidated('/'));
                    Response::Data(if lsub {
                        Data::Lsub {
                            items,
                            delimiter,
                            mailbox,
                        }
                    } else {
                        Data::List {
                            items,
                            delimiter,
                            mailbox,
                        }
                    })
                };
                if pattern.is_empty() {
                    // The hierarchy delimiter and root (RFC 3501 6.3.8).
                    if let Ok(root) = Mailbox::try_from("") {
                        out.push(line(vec![FlagNameAttribute::Noselect], root));
                    }
                    return Ok(ok("LIST done"));
                }
                if lsub && !self.admin {
                    for name in self.service.subscriptions(&user).await? {
                        let name = match service_mailbox_id(&name) {
                            Some(system) => imap_name(system),
                            None => name,
                        };
                        let name = wire_name(self.utf8, name);
                        if !wildcard_match(&pattern, &name) {
                            continue;
                        }
                        if let Ok(mailbox) = Mailbox::try_from(name) {
                            out.push(line(vec![], mailbox));
                        }
                    }
                    return Ok(ok("LSUB done"));
                }
                for f in self.folders(&user).await? {
                    let name = wire_name(self.utf8, imap_name(&f.name));
                    if !wildcard_match(&pattern, &name) {
                        continue;
                    }
                    let mut items = vec![];
                    if let Some(sp) = f.special {
                        let attr = match sp {
                            Special::Sent => "\\Sent",
                            Special::Archive => "\\Archive",
                            Special::Trash => "\\Trash",
                        };
                        items.push(FlagNameAttribute::from(Atom::unvalidated(&attr[1..])));
                    }
                    let Ok(mailbox) = Mailbox::try_from(name) else {
                        continue;
                    };
                    out.push(line(items, mailbox));
                }
                Ok(ok("LIST done"))
            }
            CommandBody::Status {
                mailbox,
                item_names,
            } => {
                let user = self.user().clone();
                let name = service_name(self.utf8, &mailbox);
                let folder = self.folder_named(&user, &name).await?;
                let state = self.service.folder_state(folder).await?;
                let info = self
                    .folders(&user)
                    .await?
                    .into_iter()
                    .find(|f| f.name.eq_ignore_ascii_case(&name));
                let (total, unread) = info.map_or((0, 0), |f| (f.total, f.unread));
                let items = item_names
                    .iter()
                    .filter_map(|n| match n {
                        StatusDataItemName::Messages => {
                            Some(StatusDataItem::Messages(total as u32))
                        }
                        StatusDataItemName::Recent => Some(StatusDataItem::Recent(
                            state
                                .next
                                .saturating_sub(1)
                                .saturating_sub(state.recent)
                                .min(total as u32),
                        )),
                        StatusDataItemName::UidNext => {
                            Some(StatusDataItem::UidNext(nz(state.next)))
                        }
                        StatusDataItemName::UidValidity => {
                            Some(StatusDataItem::UidValidity(nz(state.validity)))
                        }
                        StatusDataItemName::Unseen => Some(StatusDataItem::Unseen(unread as u32)),
                        _ => None,
                    })
                    .collect::<Vec<_>>();
                out.push(Response::Data(Data::Status {
                    mailbox,
                    items: items.into(),
                }));
                Ok(ok("STATUS done"))
            }
            CommandBody::Select { mailbox, .. } => self.select(tag, mailbox, false, out).await,
            CommandBody::Examine { mailbox, .. } => self.select(tag, mailbox, true, out).await,
            CommandBody::Create { .. }
            | CommandBody::Delete { .. }
            | CommandBody::Append { .. }
            | CommandBody::Rename { .. }
            | CommandBody::Copy { .. }
            | CommandBody::Move { .. }
                if self.admin =>
            {
                Ok(status(
                    Some(tag),
                    StatusKind::No,
                    None,
                    "the view of all mail is read-only",
                ))
            }
            CommandBody::Rename { from, to } => {
                let user = self.user().clone();
                self.service
                    .rename_folder(
                        &user,
                        &service_name(self.utf8, &from),
                        &service_name(self.utf8, &to),
                    )
                    .await?;
                Ok(ok("RENAME done"))
            }
            CommandBody::Create { mailbox } => {
                let user = self.user().clone();
                let name = service_name(self.utf8, &mailbox);
                let name = name.trim_end_matches('/');
                // The levels above it are made as needed (RFC 3501 6.3.3).
                let levels: Vec<&str> = name.split('/').collect();
                for n in 1..levels.len() {
                    let parent = levels[..n].join("/");
                    match self.service.create_mailbox(&user, &parent).await {
                        Ok(_) | Err(Error::MailboxExists) => {}
                        Err(e) => return Err(e),
                    }
                }
                self.service.create_mailbox(&user, name).await?;
                Ok(ok("CREATE done"))
            }
            CommandBody::Delete { mailbox } => {
                let user = self.user().clone();
                self.service
                    .delete_folder(&user, &service_name(self.utf8, &mailbox))
                    .await?;
                Ok(ok("DELETE done"))
            }
            CommandBody::Append {
                mailbox,
                flags,
                date,
                message,
            } => {
                let user = self.user().clone();
                let Ok(folder) = self
                    .service
                    .folder(&user, &service_name(self.utf8, &mailbox))
                    .await
                else {
                    return Ok(try_create(tag));
                };
                let raw = match message {
                    LiteralOrLiteral8::Literal(l) => l.into_inner().into_owned(),
                    LiteralOrLiteral8::Literal8(l) => l.data.into_owned(),
                };
                let change = flag_change(&StoreType::Replace, &flags);
                let at =
                    date.map(|d| Timestamp(u64::try_from(d.as_ref().timestamp()).unwrap_or(0)));
                let (validity, uid) = self.service.append(folder, raw, change, at).await?;
                let code = Code::AppendUid {
                    uid_validity: nz(validity),
                    uid: nz(uid),
                };
                Ok(status(Some(tag), StatusKind::Ok, Some(code), "APPEND done"))
            }
            CommandBody::Subscribe { mailbox } | CommandBody::Unsubscribe { mailbox }
                if !self.admin =>
            {
                let user = self.user().clone();
                let on = !unsubscribe;
                self.service
                    .subscribe(&user, &service_name(self.utf8, &mailbox), on)
                    .await?;
                Ok(ok("done"))
            }
            CommandBody::Subscribe { .. } | CommandBody::Unsubscribe { .. } => Ok(ok("done")),
            _ if !matches!(self.state, State::Selected(..)) => Ok(bad("select a mailbox first")),
            CommandBody::Close | CommandBody::Unselect => {
                let close = matches!(command.body, CommandBody::Close);
                if let State::Selected(user, s) = std::mem::replace(&mut self.state, State::Logout)
                {
                    if close && !s.read_only {
                        self.service.expunge(s.folder, None).await?;
                    }
                    self.state = State::Authenticated(user);
                }
                Ok(ok("done"))
            }
            CommandBody::Expunge => self.expunge(tag, None, out).await,
            CommandBody::Copy {
                sequence_set,
                mailbox,
                uid,
            }
            | CommandBody::Move {
                sequence_set,
                mailbox,
                uid,
            } => {
                let folder = match self.target(&tag, move_) {
                    Ok(f) => f,
                    Err(refusal) => return Ok(refusal),
                };
                let at = self.resolve(&sequence_set, uid);
                let result = self
                    .service
                    .transfer(
                        folder,
                        at.clone(),
                        &service_name(self.utf8, &mailbox),
                        !move_,
                    )
                    .await;
                let (validity, pairs) = match result {
                    Err(Error::NotFound("mailbox")) => return Ok(try_create(tag)),
                    other => other?,
                };
                let code = copy_uid(validity, &pairs);
                if !move_ {
                    return Ok(status(Some(tag), StatusKind::Ok, code, "COPY done"));
                }
                out.push(status(None, StatusKind::Ok, code, "moved"));
                for (src, _) in &pairs {
                    if let Some(u) = at.iter().find(|u| u.uid == *src) {
                        self.note_gone(u.entry);
                    }
                }
                self.sync(true, out).await?;
                Ok(ok("MOVE done"))
            }
            CommandBody::ExpungeUid { sequence_set } => {
                let uids = self.resolve(&sequence_set, true);
                let uids = uids.iter().map(|u| u.uid).collect();
                self.expunge(tag, Some(uids), out).await
            }
            CommandBody::Fetch {
                sequence_set,
                macro_or_item_names,
                uid,
                ..
            } => {
                let mut names = match macro_or_item_names {
                    imap_next::imap_types::fetch::MacroOrMessageDataItemNames::Macro(m) => {
                        m.expand().into_iter().map(|n| n.into_static()).collect()
                    }
                    imap_next::imap_types::fetch::MacroOrMessageDataItemNames::MessageDataItemNames(n) => n,
                };
                if uid && !names.contains(&MessageDataItemName::Uid) {
                    names.insert(0, MessageDataItemName::Uid);
                }
                let at = self.resolve(&sequence_set, uid);
                self.fetch(at, &names, out).await?;
                if uid {
                    self.sync(false, out).await?;
                }
                Ok(ok("FETCH done"))
            }
            CommandBody::Store {
                sequence_set,
                kind,
                response,
                flags,
                uid,
                ..
            } => {
                let folder = match self.target(&tag, true) {
                    Ok(f) => f,
                    Err(refusal) => return Ok(refusal),
                };
                let at = self.resolve(&sequence_set, uid);
                let change = flag_change(&kind, &flags);
                let changed = self
                    .service
                    .change_flags(folder, at.iter().map(|u| u.uid).collect(), change)
                    .await?;
                self.note_own_flags(changed.iter().map(|c| c.uid));
                if response == imap_next::imap_types::flag::StoreResponse::Answer {
                    for c in changed {
                        let Some(seq) = self.seq_of(c.uid) else {
                            continue;
                        };
                        let mut items = vec![MessageDataItem::Flags(self.flags_of(&c))];
                        if uid {
                            items.push(MessageDataItem::Uid(nz(c.uid)));
                        }
                        out.push(Response::Data(Data::Fetch {
                            seq: nz(seq),
                            items: Vec1::unvalidated(items),
                        }));
                    }
                }
                Ok(ok("STORE done"))
            }
            CommandBody::Search {
                criteria,
                uid,
                charset,
            } => {
                if let Some(c) = &charset {
                    let name = match c {
                        Charset::Atom(a) => a.inner().to_owned(),
                        Charset::Quoted(q) => q.inner().to_owned(),
                    };
                    if !(name.eq_ignore_ascii_case("UTF-8")
                        || name.eq_ignore_ascii_case("US-ASCII"))
                    {
                        return Ok(status(
                            Some(tag),
                            StatusKind::No,
                            Some(Code::BadCharset { allowed: vec![] }),
                            "only UTF-8",
                        ));
                    }
                }
                let key = SearchKey::And(criteria);
                let hits = self.search(&key, uid).await?;
                out.push(Response::Data(Data::Search(
                    hits.into_iter().map(nz).collect(),
                )));
                Ok(ok("SEARCH done"))
            }
            _ => Ok(bad("command not supported")),
        }
    }

    /// The selected mailbox a command works on, when it may (`writes`: the command changes
    /// it, which a mailbox opened with EXAMINE refuses); else the response refusing it.
    fn target(&self, tag: &Tag<'static>, writes: bool) -> Result<FolderRef, Response<'static>> {
        let State::Selected(_, s) = &self.state else {
            return Err(status(
                Some(tag.clone()),
                StatusKind::Bad,
                None,
                "select a mailbox first",
            ));
        };
        if writes && s.read_only {
            return Err(status(
                Some(tag.clone()),
                StatusKind::No,
                None,
                "the mailbox is read-only",
            ));
        }
        Ok(s.folder)
    }

    /// The folders the session may see: the user's, or for the operator the one view of all
    /// mail, as `INBOX`.
    async fn folders(&self, user: &User) -> crate::Result<Vec<Folder>> {
        if !self.admin {
            return self.service.folders(user).await;
        }
        let all = self.service.open_folder(FolderRef::ALL_MAIL, true).await?;
        Ok(vec![Folder {
            name: "inbox".into(),
            special: None,
            total: all.copies.len() as u64,
            unread: 0,
        }])
    }

    /// The folder a name stands for.
    async fn folder_named(&self, user: &User, name: &str) -> crate::Result<FolderRef> {
        if !self.admin {
            return self.service.folder(user, name).await;
        }
        if name.trim().eq_ignore_ascii_case("inbox") {
            Ok(FolderRef::ALL_MAIL)
        } else {
            Err(Error::NotFound("mailbox"))
        }
    }

    fn user(&self) -> &User {
        match &self.state {
            State::Authenticated(u) | State::Selected(u, _) => u,
            // Callers check the state first.
            _ => unreachable!("a command that needs a user ran before LOGIN"),
        }
    }

    async fn select(
        &mut self,
        tag: Tag<'static>,
        mailbox: Mailbox<'static>,
        read_only: bool,
        out: &mut Vec<Response<'static>>,
    ) -> crate::Result<Response<'static>> {
        let user = self.user().clone();
        // A failed SELECT leaves no mailbox selected (RFC 3501 6.3.1).
        self.state = State::Authenticated(user.clone());
        let folder = self
            .folder_named(&user, &service_name(self.utf8, &mailbox))
            .await?;
        let read_only = read_only || self.admin;
        let opened = self.service.open_folder(folder, read_only).await?;
        let copies = opened.copies;
        let recent = copies
            .iter()
            .filter(|u| u.uid > opened.state.recent)
            .count();
        let flags = vec![
            Flag::Answered,
            Flag::Flagged,
            Flag::Deleted,
            Flag::Seen,
            Flag::Draft,
        ];
        out.push(Response::Data(Data::Flags(flags.clone())));
        out.push(Response::Data(Data::Exists(copies.len() as u32)));
        out.push(Response::Data(Data::Recent(recent as u32)));
        let mut perm: Vec<FlagPerm<'static>> = flags.into_iter().map(FlagPerm::Flag).collect();
        perm.push(FlagPerm::Asterisk);
        if read_only {
            perm.clear();
        }
        out.push(status(
            None,
            StatusKind::Ok,
            Some(Code::PermanentFlags(perm)),
            "flags",
        ));
        out.push(status(
            None,
            StatusKind::Ok,
            Some(Code::UidValidity(nz(opened.state.validity))),
            "UIDs valid",
        ));
        out.push(status(
            None,
            StatusKind::Ok,
            Some(Code::UidNext(nz(opened.state.next))),
            "predicted next UID",
        ));
        let last_uid = copies.last().map_or(0, |u| u.uid);
        self.state = State::Selected(
            user,
            Selected {
                folder,
                read_only,
                copies,
                recent_above: opened.state.recent,
                last_uid,
                gone: vec![],
                flagged: vec![],
                own_flags: vec![],
                lagged: false,
            },
        );
        let code = if read_only {
            Code::ReadOnly
        } else {
            Code::ReadWrite
        };
        Ok(status(
            Some(tag),
            StatusKind::Ok,
            Some(code),
            if read_only {
                "EXAMINE done"
            } else {
                "SELECT done"
            },
        ))
    }

    async fn expunge(
        &mut self,
        tag: Tag<'static>,
        only: Option<Vec<u32>>,
        out: &mut Vec<Response<'static>>,
    ) -> crate::Result<Response<'static>> {
        let folder = match self.target(&tag, true) {
            Ok(f) => f,
            Err(refusal) => return Ok(refusal),
        };
        let gone = self.service.expunge(folder, only).await?;
        for entry in gone {
            self.note_gone(entry);
        }
        self.sync(true, out).await?;
        Ok(status(Some(tag), StatusKind::Ok, None, "EXPUNGE done"))
    }

    /// The copies a sequence set names: by UID (`uid`) or by sequence number; numbers the
    /// mailbox does not have are left out.
    fn resolve(&self, set: &SequenceSet, uid: bool) -> Vec<UidEntry> {
        let State::Selected(_, s) = &self.state else {
            return vec![];
        };
        let Some(last) = s.copies.last() else {
            return vec![];
        };
        let largest = if uid { last.uid } else { s.copies.len() as u32 };
        let mut picked: Vec<usize> = Vec::new();
        for seq in set.0.as_ref() {
            let (a, b) = match seq {
                Sequence::Single(v) => (expand(v, largest), expand(v, largest)),
                Sequence::Range(a, b) => {
                    let (a, b) = (expand(a, largest), expand(b, largest));
                    (a.min(b), a.max(b))
                }
            };
            if uid {
                let from = s.copies.partition_point(|u| u.uid < a);
                let to = s.copies.partition_point(|u| u.uid <= b);
                picked.extend(from..to);
            } else {
                let from = (a as usize).saturating_sub(1);
                let to = (b as usize).min(s.copies.len());
                picked.extend(from..to);
            }
        }
        picked.sort_unstable();
        picked.dedup();
        picked.into_iter().map(|i| s.copies[i]).collect()
    }

    fn seq_of(&self, uid: u32) -> Option<u32> {
        let State::Selected(_, s) = &self.state else {
            return None;
        };
        s.copies
            .binary_search_by_key(&uid, |u| u.uid)
            .ok()
            .map(|i| i as u32 + 1)
    }

    fn flags_of(&self, c: &Copy) -> Vec<FlagFetch<'static>> {
        let recent = match &self.state {
            State::Selected(_, s) => c.uid > s.recent_above,
            _ => false,
        };
        let mut f = Vec::new();
        if c.read {
            f.push(FlagFetch::Flag(Flag::Seen));
        }
        if c.starred {
            f.push(FlagFetch::Flag(Flag::Flagged));
        }
        if c.flags.answered {
            f.push(FlagFetch::Flag(Flag::Answered));
        }
        if c.flags.deleted {
            f.push(FlagFetch::Flag(Flag::Deleted));
        }
        if c.flags.draft {
            f.push(FlagFetch::Flag(Flag::Draft));
        }
        for k in &c.flags.keywords {
            if let Ok(atom) = imap_next::imap_types::core::Atom::try_from(k.clone()) {
                f.push(FlagFetch::Flag(Flag::Keyword(atom)));
            }
        }
        if recent {
            f.push(FlagFetch::Recent);
        }
        f
    }

    async fn fetch(
        &mut self,
        at: Vec<UidEntry>,
        names: &[MessageDataItemName<'static>],
        out: &mut Vec<Response<'static>>,
    ) -> crate::Result<()> {
        let State::Selected(_, s) = &self.state else {
            return Ok(());
        };
        let folder = s.folder;
        let read_only = s.read_only;
        let want = fetch::wants(names);
        let marks_seen = !read_only
            && names.iter().any(|n| {
                matches!(
                    n,
                    MessageDataItemName::BodyExt { peek: false, .. }
                        | MessageDataItemName::Rfc822
                        | MessageDataItemName::Rfc822Text
                )
            });
        let mut copies = self.service.copies(folder, at, want).await?;
        if marks_seen {
            let unseen: Vec<u32> = copies.iter().filter(|c| !c.read).map(|c| c.uid).collect();
            if !unseen.is_empty() {
                let change = FlagChange {
                    read: Some(true),
                    ..Default::default()
                };
                let changed = self.service.change_flags(folder, unseen, change).await?;
                self.note_own_flags(changed.iter().map(|c| c.uid));
                for c in &mut copies {
                    c.read = true;
                }
            }
        }
        for c in copies {
            let Some(seq) = self.seq_of(c.uid) else {
                continue;
            };
            let mut items = Vec::with_capacity(names.len());
            for n in names {
                let item = match n {
                    MessageDataItemName::Flags => MessageDataItem::Flags(self.flags_of(&c)),
                    MessageDataItemName::Uid => MessageDataItem::Uid(nz(c.uid)),
                    other => match fetch::item(other, &c) {
                        Some(i) => i,
                        None => continue,
                    },
                };
                items.push(item);
            }
            if marks_seen && !names.contains(&MessageDataItemName::Flags) {
                items.push(MessageDataItem::Flags(self.flags_of(&c)));
            }
            if items.is_empty() {
                continue;
            }
            out.push(Response::Data(Data::Fetch {
                seq: nz(seq),
                items: Vec1::unvalidated(items),
            }));
        }
        Ok(())
    }

    async fn search(&self, key: &SearchKey<'static>, uid: bool) -> crate::Result<Vec<u32>> {
        let State::Selected(_, s) = &self.state else {
            return Ok(vec![]);
        };
        let want = Want {
            raw: fetch::search_needs_source(key),
            structure: false,
        };
        let copies = self
            .service
            .copies(s.folder, s.copies.clone(), want)
            .await?;
        let mut hits = Vec::new();
        for c in &copies {
            let Some(seq) = self.seq_of(c.uid) else {
                continue;
            };
            let ctx = fetch::SearchCtx {
                seq,
                largest_seq: s.copies.len() as u32,
                largest_uid: s.last_uid,
                recent: c.uid > s.recent_above,
            };
            if fetch::matches(key, c, &ctx) {
                hits.push(if uid { c.uid } else { seq });
            }
        }
        Ok(hits)
    }
}

fn expand(v: &SeqOrUid, largest: u32) -> u32 {
    match v {
        SeqOrUid::Value(n) => n.get(),
        SeqOrUid::Asterisk => largest,
    }
}

/// A STORE's flags as a change of the service.
fn flag_change(kind: &StoreType, flags: &[Flag<'static>]) -> FlagChange {
    let set = !matches!(kind, StoreType::Remove);
    let replace = matches!(kind, StoreType::Replace);
    let has = |f: &Flag<'_>| flags.contains(f);
    let pick = |f: Flag<'static>| -> Option<bool> {
        if has(&f) {
            Some(set)
        } else if replace {
            Some(false)
        } else {
            None
        }
    };
    let keywords: Vec<String> = flags
        .iter()
        .filter_map(|f| match f {
            Flag::Keyword(a) => Some(a.inner().to_owned()),
            _ => None,
        })
        .collect();
    FlagChange {
        read: pick(Flag::Seen),
        starred: pick(Flag::Flagged),
        answered: pick(Flag::Answered),
        deleted: pick(Flag::Deleted),
        draft: pick(Flag::Draft),
        add_keywords: if set { keywords.clone() } else { vec![] },
        remove_keywords: if set { vec![] } else { keywords },
        replace_keywords: replace,
    }
}

/// LIST's wildcards: `*` matches anything, `%` anything but the delimiter; names compare
/// case-insensitively for INBOX only.
fn wildcard_match(pattern: &str, name: &str) -> bool {
    fn go(p: &[char], n: &[char]) -> bool {
        match p.first() {
            None => n.is_empty(),
            Some('*') => (0..=n.len()).any(|i| go(&p[1..], &n[i..])),
            Some('%') => (0..=n.len())
                .take_while(|&i| i == 0 || n[i - 1] != '/')
                .any(|i| go(&p[1..], &n[i..])),
            Some(c) => n.first() == Some(c) && go(&p[1..], &n[1..]),
        }
    }
    let pattern = if pattern.len() >= 5 && pattern[..5].eq_ignore_ascii_case("inbox") {
        format!("INBOX{}", &pattern[5..])
    } else {
        pattern.to_owned()
    };
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    go(&p, &n)
}

/// The response code of a NO for a service error, where RFC 5530 has one: OVERQUOTA for a
/// full disk, as Dovecot answers an APPEND then.
fn no_code(e: &Error) -> Option<Code<'static>> {
    matches!(e, Error::StorageFull).then_some(Code::OverQuota)
}

/// The text of a NO for a service error.
fn no_text(e: &Error) -> String {
    match e {
        Error::StorageFull => "not enough disk space on the server; try again later".into(),
        Error::NotFound(what) => format!("no such {what}"),
        Error::MailboxExists => "a mailbox of that name exists".into(),
        Error::MailboxNotEmpty => "the mailbox is not empty".into(),
        Error::Invalid { message, .. } => message.clone(),
        _ => "the server could not do that; try again".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_wildcards() {
        assert!(wildcard_match("*", "Projects/2026"));
        assert!(!wildcard_match("%", "Projects/2026"));
        assert!(wildcard_match("%", "Projects"));
        assert!(wildcard_match("Projects/%", "Projects/2026"));
        assert!(wildcard_match("inbox", "INBOX"));
        assert!(!wildcard_match("sent", "Sent"));
    }
}
