//! The store contract on a temporary sled: users and the case-insensitive email index,
//! sessions and their indexes, expiry purges, the data-dir lock, and persistence; and that an
//! account deleted while it logs in keeps no session.

use std::path::Path;
use std::sync::{Arc, Barrier};

use fakemail::Error;
use fakemail::store::keys::DIGEST_LEN;
use fakemail::store::{SessionRecord, Store, StoreError, UserRecord};
use fakemail::time::Timestamp;

const CACHE: u64 = 8 << 20;

fn open(dir: &Path) -> Store {
    Store::open(dir, CACHE).expect("open store")
}

fn user(store: &Store, email: &str) -> UserRecord {
    UserRecord {
        id: store.generate_id().unwrap(),
        email: email.to_owned(),
        display_name: format!("name of {email}"),
        password_hash: "$pbkdf2-sha256$i=1000,l=32$c2FsdA$aGFzaA".to_owned(),
        created_at: Timestamp(1_700_000_000),
    }
}

fn digest(n: u8) -> [u8; DIGEST_LEN] {
    [n; DIGEST_LEN]
}

/// Registers users with these ids: a session is stored only for a user that exists.
fn users_with_ids(store: &Store, ids: impl IntoIterator<Item = u64>) {
    for id in ids {
        let mut u = user(store, &format!("user{id}@example.test"));
        u.id = id;
        store.insert_user(&u).unwrap();
    }
}

fn session(user_id: u64, expires_at: u64) -> SessionRecord {
    SessionRecord {
        user_id,
        created_at: Timestamp(expires_at.saturating_sub(3600)),
        expires_at: Timestamp(expires_at),
    }
}

#[test]
fn inserted_users_are_found_by_id_and_by_email_in_any_case() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let alice = user(&store, "Alice@Example.test");
    store.insert_user(&alice).unwrap();

    assert_eq!(store.user(alice.id).unwrap(), Some(alice.clone()));
    for form in [
        "Alice@Example.test",
        "alice@example.test",
        "ALICE@EXAMPLE.TEST",
        "  alice@example.test ",
    ] {
        assert_eq!(
            store.user_by_email(form).unwrap(),
            Some(alice.clone()),
            "{form}"
        );
    }
    assert_eq!(store.user(alice.id + 1000).unwrap(), None);
    assert_eq!(store.user_by_email("bob@example.test").unwrap(), None);
    assert_eq!(store.user_count().unwrap(), 1);
}

#[test]
fn ids_are_unique_and_never_zero() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let ids: Vec<u64> = (0..100).map(|_| store.generate_id().unwrap()).collect();
    assert!(ids.iter().all(|&id| id != 0));
    let mut sorted = ids.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), ids.len(), "unique");
}

#[test]
fn email_is_unique_case_insensitively() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let first = user(&store, "bob@example.test");
    store.insert_user(&first).unwrap();
    for email in ["bob@example.test", "BOB@Example.Test", " bob@example.test "] {
        let dup = user(&store, email);
        assert!(
            matches!(store.insert_user(&dup), Err(Error::EmailTaken)),
            "{email}"
        );
        assert_eq!(store.user(dup.id).unwrap(), None, "nothing half-written");
    }
    assert_eq!(store.user_count().unwrap(), 1);
    assert_eq!(
        store.user_by_email("BOB@example.test").unwrap(),
        Some(first)
    );
}

#[test]
fn update_replaces_the_record() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let mut alice = user(&store, "alice@example.test");
    store.insert_user(&alice).unwrap();
    alice.display_name = "Alice Liddell".into();
    alice.password_hash = "$pbkdf2-sha256$i=2000,l=32$bmV3$bmV3".into();
    assert!(store.update_user(&alice).unwrap());
    assert_eq!(store.user(alice.id).unwrap(), Some(alice.clone()));
    assert_eq!(
        store.user_by_email("alice@example.test").unwrap(),
        Some(alice)
    );
    assert_eq!(store.user_count().unwrap(), 1);
}

#[test]
fn an_update_does_not_bring_a_deleted_user_back() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let mut alice = user(&store, "alice@example.test");
    store.insert_user(&alice).unwrap();
    // A profile change read the record, then the account was deleted before the write.
    assert!(store.delete_user(alice.id).unwrap());
    alice.display_name = "Alice Liddell".into();
    assert!(!store.update_user(&alice).unwrap());
    assert_eq!(store.user(alice.id).unwrap(), None);
    assert_eq!(store.user_count().unwrap(), 0);
}

#[test]
fn sessions_insert_get_and_delete() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    users_with_ids(&store, [7, 8]);
    let s1 = session(7, 2_000);
    let s2 = session(8, 3_000);
    assert!(store.insert_session(&digest(1), &s1).unwrap());
    assert!(store.insert_session(&digest(2), &s2).unwrap());
    assert_eq!(store.session(&digest(1)).unwrap(), Some(s1));
    assert_eq!(store.session(&digest(2)).unwrap(), Some(s2.clone()));
    assert_eq!(store.session(&digest(3)).unwrap(), None);
    assert_eq!(store.session_count(), 2);

    assert!(store.delete_session(&digest(1)).unwrap());
    assert!(!store.delete_session(&digest(1)).unwrap(), "already gone");
    assert_eq!(store.session(&digest(1)).unwrap(), None);
    assert_eq!(store.session(&digest(2)).unwrap(), Some(s2));
    assert_eq!(store.session_count(), 1);
    // Its index entries went too: neither a purge nor a revoke finds it.
    assert_eq!(store.purge_expired_sessions(Timestamp(2_500)).unwrap(), 0);
    assert_eq!(store.delete_user_sessions(7, None).unwrap(), 0);
}

#[test]
fn delete_user_sessions_keeps_the_kept_one_and_other_users() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    users_with_ids(&store, [7, 8]);
    for n in 1..=4 {
        store
            .insert_session(&digest(n), &session(7, 5_000))
            .unwrap();
    }
    store
        .insert_session(&digest(9), &session(8, 5_000))
        .unwrap();

    assert_eq!(store.delete_user_sessions(7, Some(&digest(2))).unwrap(), 3);
    for n in [1, 3, 4] {
        assert_eq!(store.session(&digest(n)).unwrap(), None, "session {n}");
    }
    assert!(store.session(&digest(2)).unwrap().is_some(), "kept");
    assert!(store.session(&digest(9)).unwrap().is_some(), "other user");
    assert_eq!(store.delete_user_sessions(7, Some(&digest(2))).unwrap(), 0);

    assert_eq!(store.delete_user_sessions(7, None).unwrap(), 1);
    assert_eq!(store.session(&digest(2)).unwrap(), None);
    assert_eq!(store.session_count(), 1);
}

#[test]
fn purge_removes_exactly_the_sessions_expired_at_or_before_now() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let expiries = [(1, 100), (2, 199), (3, 200), (4, 200), (5, 201), (6, 300)];
    users_with_ids(&store, 1..=6);
    for (n, at) in expiries {
        store
            .insert_session(&digest(n), &session(u64::from(n), at))
            .unwrap();
    }
    assert_eq!(store.purge_expired_sessions(Timestamp(99)).unwrap(), 0);
    assert_eq!(store.session_count(), expiries.len());

    assert_eq!(store.purge_expired_sessions(Timestamp(200)).unwrap(), 4);
    for (n, at) in expiries {
        let kept = store.session(&digest(n)).unwrap().is_some();
        assert_eq!(kept, at > 200, "session {n} expiring at {at}");
    }
    assert_eq!(store.purge_expired_sessions(Timestamp(200)).unwrap(), 0);
    // The purged sessions left the per-user index too.
    for n in 1..=4u64 {
        assert_eq!(store.delete_user_sessions(n, None).unwrap(), 0);
    }
    assert_eq!(
        store.purge_expired_sessions(Timestamp(u64::MAX)).unwrap(),
        2
    );
    assert_eq!(store.session_count(), 0);
}

#[test]
fn delete_user_removes_its_sessions_and_frees_the_email() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let alice = user(&store, "Alice@example.test");
    let bob = user(&store, "bob@example.test");
    store.insert_user(&alice).unwrap();
    store.insert_user(&bob).unwrap();
    store
        .insert_session(&digest(1), &session(alice.id, 1_000))
        .unwrap();
    store
        .insert_session(&digest(2), &session(alice.id, 2_000))
        .unwrap();
    store
        .insert_session(&digest(3), &session(bob.id, 1_000))
        .unwrap();

    assert!(store.delete_user(alice.id).unwrap());
    assert!(!store.delete_user(alice.id).unwrap(), "already gone");
    assert_eq!(store.user(alice.id).unwrap(), None);
    assert_eq!(store.user_by_email("alice@example.test").unwrap(), None);
    assert_eq!(store.session(&digest(1)).unwrap(), None);
    assert_eq!(store.session(&digest(2)).unwrap(), None);
    assert_eq!(store.user(bob.id).unwrap(), Some(bob.clone()));
    assert!(store.session(&digest(3)).unwrap().is_some());
    assert_eq!(store.user_count().unwrap(), 1);
    assert_eq!(store.session_count(), 1);
    // No index entry of alice's survives: only bob's session is purged.
    assert_eq!(
        store.purge_expired_sessions(Timestamp(u64::MAX)).unwrap(),
        1
    );

    // The address can be registered again, in any case.
    let again = user(&store, "ALICE@example.test");
    store.insert_user(&again).unwrap();
    assert_ne!(again.id, alice.id);
    assert_eq!(
        store.user_by_email("alice@example.test").unwrap(),
        Some(again)
    );
}

#[test]
fn a_deleted_user_gets_no_new_session() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let alice = user(&store, "alice@example.test");
    store.insert_user(&alice).unwrap();
    // A login checked the password, then the account was deleted before its session was
    // stored: the session is refused, not left behind for a user that is gone.
    assert!(store.delete_user(alice.id).unwrap());
    assert!(
        !store
            .insert_session(&digest(1), &session(alice.id, 5_000))
            .unwrap()
    );
    assert_eq!(store.session(&digest(1)).unwrap(), None);
    assert_eq!(store.session_count(), 0);
    assert_eq!(
        store.purge_expired_sessions(Timestamp(u64::MAX)).unwrap(),
        0
    );
}

#[test]
fn logins_while_the_account_is_deleted_leave_no_session_behind() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let key = |round: u64, n: u8| {
        let mut d = [n; DIGEST_LEN];
        d[..8].copy_from_slice(&round.to_be_bytes());
        d
    };
    let (mut first, mut refused) = (0, 0);
    for round in 0..300 {
        let u = user(&store, &format!("user{round}@example.test"));
        store.insert_user(&u).unwrap();
        let older = key(round, 1);
        assert!(store.insert_session(&older, &session(u.id, 5_000)).unwrap());
        let start = Arc::new(Barrier::new(2));
        let login = {
            let (store, start, id) = (store.clone(), start.clone(), u.id);
            std::thread::spawn(move || {
                start.wait();
                store.insert_session(&key(round, 2), &session(id, 5_000))
            })
        };
        start.wait();
        assert!(store.delete_user(u.id).unwrap());
        if login.join().unwrap().unwrap() {
            first += 1;
        } else {
            refused += 1;
        }
        for d in [older, key(round, 2)] {
            assert_eq!(store.session(&d).unwrap(), None, "round {round}");
        }
        assert_eq!(store.session_count(), 0, "round {round}");
    }
    assert_eq!(first + refused, 300);
    // No index entry survived either.
    assert_eq!(
        store.purge_expired_sessions(Timestamp(u64::MAX)).unwrap(),
        0
    );
}

#[test]
fn a_second_open_of_the_same_dir_is_locked() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    match Store::open(dir.path(), CACHE) {
        Err(StoreError::Locked(path)) => assert_eq!(path, dir.path()),
        Err(e) => panic!("expected Locked, got {e}"),
        Ok(_) => panic!("a second store opened the same dir"),
    }
    let msg = Store::open(dir.path(), CACHE).unwrap_err().to_string();
    assert!(
        msg.contains(&dir.path().display().to_string()) && msg.contains("locked"),
        "{msg}"
    );
    // A clone shares the lock; dropping every handle releases it.
    let clone = store.clone();
    drop(store);
    assert!(matches!(
        Store::open(dir.path(), CACHE),
        Err(StoreError::Locked(_))
    ));
    drop(clone);
    open(dir.path());
}

#[test]
fn data_persists_across_close_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let (alice, last_id) = {
        let store = open(dir.path());
        let alice = user(&store, "Alice@example.test");
        store.insert_user(&alice).unwrap();
        store
            .insert_session(&digest(1), &session(alice.id, 5_000))
            .unwrap();
        store
            .insert_session(&digest(2), &session(alice.id, 100))
            .unwrap();
        let last_id = store.generate_id().unwrap();
        store.flush().unwrap();
        (alice, last_id)
    };
    // Several rounds: each reopen must find the dir unlocked and the data intact.
    for round in 0..3 {
        let store = open(dir.path());
        assert_eq!(
            store.user(alice.id).unwrap(),
            Some(alice.clone()),
            "{round}"
        );
        assert_eq!(
            store.user_by_email("alice@example.test").unwrap(),
            Some(alice.clone())
        );
        assert_eq!(
            store.session(&digest(1)).unwrap(),
            Some(session(alice.id, 5_000))
        );
        assert!(
            store.generate_id().unwrap() > last_id,
            "ids are not reused after a reopen"
        );
        assert!(matches!(
            store.insert_user(&user(&store, "ALICE@example.test")),
            Err(Error::EmailTaken)
        ));
        if round == 0 {
            // The expiry index persisted as well.
            assert_eq!(store.purge_expired_sessions(Timestamp(100)).unwrap(), 1);
        }
        assert_eq!(store.session_count(), 1);
        store.flush().unwrap();
    }
}
