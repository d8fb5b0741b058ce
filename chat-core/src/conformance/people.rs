//! Friendships and user profiles.

#[allow(clippy::wildcard_imports)]
use super::*;

/// Every friendship transition, legal and illegal, applied atomically by the store.
pub async fn friendship_transitions(store: Arc<dyn Store>) {
    let (ann, ben, cid_) = (user("ann"), user("ben"), user("cid"));
    let apply = |actor: &UserId, other: &UserId, action| {
        let store = store.clone();
        let (actor, other) = (actor.clone(), other.clone());
        async move { store.apply_friendship(&actor, &other, action, t(50)).await }
    };
    let code =
        |r: crate::Result<crate::model::Friendship>| r.map(|f| f.state).map_err(|e| e.code());
    use FriendAction::*;
    // Nothing yet: only request and block are legal.
    for action in [Accept, Decline, Cancel, Remove, Unblock] {
        assert_eq!(
            code(apply(&ann, &ben, action).await),
            Err(ErrorCode::NotFound),
            "{action:?} from nothing"
        );
    }
    assert_eq!(
        store.friendship(&ann, &ben).await.unwrap_or_default(),
        None,
        "illegal actions leave no record"
    );
    assert_eq!(
        code(apply(&ann, &ben, Request).await),
        Ok(FriendState::Pending { from: ann.clone() })
    );
    assert_eq!(
        code(apply(&ann, &ben, Request).await),
        Err(ErrorCode::Conflict),
        "a second request"
    );
    assert_eq!(
        code(apply(&ann, &ben, Accept).await),
        Err(ErrorCode::NotFound),
        "accepting one's own request"
    );
    assert_eq!(
        code(apply(&ben, &ann, Cancel).await),
        Err(ErrorCode::NotFound),
        "cancelling someone else's request"
    );
    assert_eq!(code(apply(&ann, &ben, Cancel).await), Ok(FriendState::None));
    assert_eq!(
        store.friendship(&ann, &ben).await.unwrap_or_default(),
        None,
        "an empty record is dropped"
    );
    apply(&ann, &ben, Request)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        code(apply(&ben, &ann, Decline).await),
        Ok(FriendState::None)
    );
    apply(&ann, &ben, Request)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        code(apply(&ben, &ann, Accept).await),
        Ok(FriendState::Accepted)
    );
    let f = store
        .friendship(&ben, &ann)
        .await
        .ok()
        .flatten()
        .unwrap_or_else(|| panic!("record"));
    assert!(f.is_friends() && f.a == ann && f.b == ben && f.updated_at == t(50));
    assert_eq!(
        code(apply(&ben, &ann, Request).await),
        Err(ErrorCode::Conflict),
        "already friends"
    );
    assert_eq!(code(apply(&ben, &ann, Remove).await), Ok(FriendState::None));
    assert_eq!(
        code(apply(&ben, &ann, Remove).await),
        Err(ErrorCode::NotFound)
    );
    // Crossed requests become a friendship.
    apply(&ann, &cid_, Request)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        code(apply(&cid_, &ann, Request).await),
        Ok(FriendState::Accepted)
    );
    // Blocking ends the friendship and stops requests both ways until lifted.
    let blocked = apply(&cid_, &ann, Block)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(blocked.blocks(&cid_) && !blocked.blocks(&ann) && !blocked.is_friends());
    assert_eq!(
        code(apply(&ann, &cid_, Request).await),
        Err(ErrorCode::Forbidden)
    );
    assert_eq!(
        code(apply(&cid_, &ann, Request).await),
        Err(ErrorCode::Forbidden)
    );
    assert_eq!(
        code(apply(&ann, &cid_, Unblock).await),
        Err(ErrorCode::NotFound),
        "only the blocker unblocks"
    );
    let both = apply(&ann, &cid_, Block)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(both.a_blocks_b && both.b_blocks_a);
    apply(&cid_, &ann, Unblock)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let still = store
        .friendship(&ann, &cid_)
        .await
        .ok()
        .flatten()
        .unwrap_or_else(|| panic!("record"));
    assert!(
        still.blocks(&ann) && !still.blocks(&cid_),
        "ann's block remains"
    );
    apply(&ann, &cid_, Unblock)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        store.friendship(&ann, &cid_).await.unwrap_or_default(),
        None
    );
    assert_eq!(
        code(apply(&ann, &ann, Request).await),
        Err(ErrorCode::Invalid),
        "no friendship with oneself"
    );
    // Listing.
    apply(&ann, &ben, Request)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    apply(&cid_, &ann, Request)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let list = store.friendships(&ann, None, 10).await.unwrap_or_default();
    let others: Vec<&UserId> = list.iter().map(|f| f.other(&ann)).collect();
    assert_eq!(others, vec![&ben, &cid_], "ordered by the other user");
    assert_eq!(
        store
            .friendships(&ann, None, 1)
            .await
            .unwrap_or_default()
            .len(),
        1
    );
    assert_eq!(
        store
            .friendships(&ben, None, 10)
            .await
            .unwrap_or_default()
            .len(),
        1
    );
    // Paging: only records whose other user sorts after `after`, from either side.
    let rest = store
        .friendships(&ann, Some(&ben), 10)
        .await
        .unwrap_or_default();
    let rest: Vec<&UserId> = rest.iter().map(|f| f.other(&ann)).collect();
    assert_eq!(rest, vec![&cid_], "the page after ben");
    assert!(
        store
            .friendships(&cid_, Some(&ann), 10)
            .await
            .unwrap_or_default()
            .is_empty(),
        "nothing after the last"
    );
}

/// Profiles keep a display name and the last-seen time.
pub async fn users_and_last_seen(store: Arc<dyn Store>) {
    let alice = user("alice");
    assert_eq!(store.user(&alice).await.unwrap_or_default(), None);
    store
        .upsert_user(&alice, Some("Alice"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    store
        .upsert_user(&alice, None)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let p = store
        .user(&alice)
        .await
        .ok()
        .flatten()
        .unwrap_or_else(|| panic!("profile"));
    assert_eq!(
        (p.display_name.as_deref(), p.last_seen),
        (Some("Alice"), None),
        "no name keeps the old one"
    );
    store
        .set_last_seen(&alice, t(60))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    store
        .upsert_user(&alice, Some("Alice B."))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let p = store
        .user(&alice)
        .await
        .ok()
        .flatten()
        .unwrap_or_else(|| panic!("profile"));
    assert_eq!(
        (p.display_name.as_deref(), p.last_seen),
        (Some("Alice B."), Some(t(60)))
    );
    let bob = user("bob");
    store
        .set_last_seen(&bob, t(61))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        store
            .user(&bob)
            .await
            .ok()
            .flatten()
            .and_then(|p| p.last_seen),
        Some(t(61))
    );
}

/// The batched loads of a connect storm answer exactly what the one-by-one calls do, in
/// the order asked, repeats and unknown users included.
pub async fn batched_loads_match_one_by_one(store: Arc<dyn Store>) {
    let (ann, bob, cat, dan, eve) = (
        user("ann"),
        user("bob"),
        user("cat"),
        user("dan"),
        user("eve"),
    );
    let r1 = room(store.as_ref(), "batch-one", &ann).await;
    let r2 = room(store.as_ref(), "batch-two", &ann).await;
    join(store.as_ref(), r1.id, &bob).await;
    join(store.as_ref(), r2.id, &cat).await;
    use FriendAction::*;
    for (actor, other, action) in [
        (&ann, &bob, Request),
        (&bob, &ann, Accept),
        (&dan, &ann, Request),
        (&ann, &dan, Accept),
        (&ann, &cat, Request), // pending: not a friend
        (&bob, &eve, Request),
        (&eve, &bob, Accept),
        (&bob, &eve, Block), // blocked: no longer friends
    ] {
        if let Err(e) = store.apply_friendship(actor, other, action, t(60)).await {
            panic!("{actor} {action:?} {other}: {e}");
        }
    }
    let asked = [
        ann.clone(),
        bob.clone(),
        cat.clone(),
        user("nobody"),
        ann.clone(),
    ];
    for limit in [1_000, 1] {
        let many = store
            .conversations_of_many(&asked, limit)
            .await
            .unwrap_or_else(|e| panic!("conversations_of_many: {e}"));
        let mut one_by_one = Vec::new();
        for u in &asked {
            one_by_one.push(store.conversations_of(u, limit).await.unwrap_or_default());
        }
        assert_eq!(many, one_by_one, "conversations_of_many at limit {limit}");
    }
    let mut both = vec![r1.id, r2.id];
    both.sort();
    assert_eq!(
        store
            .conversations_of_many(std::slice::from_ref(&ann), 1_000)
            .await
            .unwrap_or_default(),
        vec![both]
    );
    let friends = store
        .friends_of_many(&asked, 1_000)
        .await
        .unwrap_or_else(|e| panic!("friends_of_many: {e}"));
    assert_eq!(
        friends,
        vec![
            vec![bob.clone(), dan.clone()],
            vec![ann.clone()],
            vec![],
            vec![],
            vec![bob.clone(), dan.clone()],
        ],
        "accepted friendships only, ordered by id"
    );
    let first = store
        .friends_of_many(&asked, 1)
        .await
        .unwrap_or_else(|e| panic!("friends_of_many: {e}"));
    assert_eq!(
        first,
        vec![
            vec![bob.clone()],
            vec![ann.clone()],
            vec![],
            vec![],
            vec![bob]
        ],
        "at most `limit` each, from the first id"
    );
    assert_eq!(
        store.conversations_of_many(&[], 10).await.ok(),
        Some(Vec::new())
    );
    assert_eq!(store.friends_of_many(&[], 10).await.ok(), Some(Vec::new()));
}
