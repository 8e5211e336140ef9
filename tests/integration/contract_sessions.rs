//! The storage contract for sessions: the decisions about them, tried with real parallel tasks
//! on every backend.

use futures_util::future::join_all;

use crate::contract::{NOW, backends, session};

/// Session checks made at once (a browser's tabs, two instances) store one result, and a check
/// that read the session before a renewal (a change made in it) never overwrites that renewal.
#[tokio::test]
async fn of_parallel_session_checks_one_is_stored_and_none_overwrites_a_renewal() {
    for (store, _dir) in backends().await {
        store.insert_session(&session("s", "u")).await.unwrap();
        let values: Vec<String> = (0..20).map(|i| (2000 + i).to_string()).collect();
        let checks =
            join_all(values.iter().map(|v| store.session_password_checked("s", Some(v), NOW + 60, Some(NOW)))).await;
        assert_eq!(checks.into_iter().filter(|c| *c.as_ref().unwrap()).count(), 1, "one check is stored");
        store.session_password_renewed("s", None, NOW + 61).await.unwrap();
        let late =
            join_all((0..5).map(|_| store.session_password_checked("s", Some("1000"), NOW + 62, Some(NOW + 60))));
        assert!(late.await.iter().all(|c| !c.as_ref().unwrap()), "read before the renewal: not stored");
        assert_eq!(store.session("s").await.unwrap().unwrap().pwd_last_set, None, "the renewal stands");
    }
}

/// A session moving to a new id (a change or a re-authentication) while the user's sessions are
/// ended (a reset, an unlock, a revocation elsewhere) never outlives the end: on PostgreSQL a
/// delete and an insert slipped past a concurrent end. Many rounds, so that they overlap.
#[tokio::test]
async fn a_session_moved_while_the_users_sessions_end_ends_too() {
    for (store, _dir) in backends().await {
        for round in 0..30 {
            let (old, new) = (format!("m{round}"), format!("n{round}"));
            store.insert_session(&session(&old, "mover")).await.unwrap();
            let (moved, ended) =
                tokio::join!(store.move_session(&old, &new), store.delete_user_sessions("mover", None));
            moved.unwrap();
            ended.unwrap();
            assert!(store.session(&old).await.unwrap().is_none(), "round {round}");
            assert!(store.session(&new).await.unwrap().is_none(), "round {round}: the moved session outlived the end");
        }
        // Of moves of one id at once, one wins.
        store.insert_session(&session("one", "mover")).await.unwrap();
        let moves = join_all((0..10).map(|i| {
            let store = store.clone();
            async move { store.move_session("one", &format!("one-{i}")).await.unwrap() }
        }))
        .await;
        assert_eq!(moves.iter().filter(|m| **m).count(), 1, "{moves:?}");
    }
}
