use std::collections::{BTreeMap, BTreeSet, HashMap};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use parking_lot::Mutex;

use crate::error::{Error, Result};
use crate::ids::{ConversationId, Seq, UserId};
use crate::model::{
    direct_pair, Appended, Conversation, ConversationKind, FriendAction, Friendship, HistoryPage,
    Member, Message, NewDirect, NewMessage, NewRoom, Role, Watermarks,
};
use crate::ports::{ConversationSummary, Store, UserProfile};

/// A [`Store`] in memory. Nothing survives the process.
#[derive(Debug, Default)]
pub struct MemoryStore {
    state: Mutex<State>,
    failing_appends: std::sync::atomic::AtomicBool,
}

#[derive(Debug, Default)]
struct State {
    users: HashMap<UserId, UserProfile>,
    convs: HashMap<ConversationId, Conv>,
    room_names: HashMap<String, ConversationId>,
    directs: HashMap<(UserId, UserId), ConversationId>,
    client_ids: HashMap<(UserId, String), (ConversationId, Seq)>,
    user_convs: HashMap<UserId, BTreeSet<ConversationId>>,
    friendships: BTreeMap<(UserId, UserId), Friendship>,
}

#[derive(Debug)]
struct Conv {
    conv: Conversation,
    members: BTreeMap<UserId, Member>,
    /// `messages[i].seq == i + 1`.
    messages: Vec<Message>,
}

impl Conv {
    fn new(conv: Conversation) -> Self {
        Conv {
            conv,
            members: BTreeMap::new(),
            messages: Vec::new(),
        }
    }

    fn unread(&self, user: &UserId) -> u64 {
        let Some(m) = self.members.get(user) else {
            return 0;
        };
        let from = usize::try_from(m.watermarks.read_seq).unwrap_or(usize::MAX);
        crate::model::count_unread(user, m.watermarks.read_seq, self.messages.iter().skip(from))
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// While on, every append fails with `unavailable` and writes nothing, as if the
    /// database were gone: for testing what callers do when a write is not durable.
    pub fn fail_appends(&self, on: bool) {
        self.failing_appends
            .store(on, std::sync::atomic::Ordering::SeqCst);
    }
}

fn missing_conversation(id: ConversationId) -> Error {
    Error::not_found(format!("conversation {id}"))
}

impl State {
    fn conv_mut(&mut self, id: ConversationId) -> Result<&mut Conv> {
        self.convs
            .get_mut(&id)
            .ok_or_else(|| missing_conversation(id))
    }

    fn conv(&self, id: ConversationId) -> Result<&Conv> {
        self.convs.get(&id).ok_or_else(|| missing_conversation(id))
    }

    fn insert_member(
        &mut self,
        id: ConversationId,
        user: &UserId,
        role: Role,
        at: DateTime<Utc>,
    ) -> Result<Member> {
        let member = Member {
            conversation: id,
            user: user.clone(),
            role,
            watermarks: Watermarks::default(),
            joined_at: at,
        };
        self.conv_mut(id)?
            .members
            .insert(user.clone(), member.clone());
        self.user_convs.entry(user.clone()).or_default().insert(id);
        Ok(member)
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn upsert_user(&self, user: &UserId, display_name: Option<&str>) -> Result<()> {
        let mut s = self.state.lock();
        let p = s.users.entry(user.clone()).or_insert_with(|| UserProfile {
            user: user.clone(),
            display_name: None,
            last_seen: None,
        });
        if display_name.is_some() {
            p.display_name = display_name.map(str::to_owned);
        }
        Ok(())
    }

    async fn user(&self, user: &UserId) -> Result<Option<UserProfile>> {
        Ok(self.state.lock().users.get(user).cloned())
    }

    async fn set_last_seen(&self, user: &UserId, at: DateTime<Utc>) -> Result<()> {
        let mut s = self.state.lock();
        s.users
            .entry(user.clone())
            .or_insert_with(|| UserProfile {
                user: user.clone(),
                display_name: None,
                last_seen: None,
            })
            .last_seen = Some(at);
        Ok(())
    }

    async fn create_room(&self, room: NewRoom) -> Result<Conversation> {
        let mut s = self.state.lock();
        if s.room_names.contains_key(&room.name) {
            return Err(Error::conflict(format!(
                "a room named {:?} exists",
                room.name
            )));
        }
        if s.convs.contains_key(&room.id) {
            return Err(Error::conflict(format!("conversation {} exists", room.id)));
        }
        let conv = Conversation {
            id: room.id,
            kind: ConversationKind::Room {
                name: room.name.clone(),
                visibility: room.visibility,
            },
            created_by: room.created_by.clone(),
            created_at: room.created_at,
            last_seq: 0,
        };
        s.convs.insert(room.id, Conv::new(conv.clone()));
        s.room_names.insert(room.name, room.id);
        s.insert_member(room.id, &room.created_by, Role::Owner, room.created_at)?;
        Ok(conv)
    }

    async fn open_direct(&self, d: NewDirect) -> Result<(Conversation, bool)> {
        let pair = direct_pair(&d.user, &d.peer)?;
        let mut s = self.state.lock();
        if let Some(id) = s.directs.get(&pair) {
            return Ok((s.conv(*id)?.conv.clone(), false));
        }
        let conv = Conversation {
            id: d.id,
            kind: ConversationKind::Direct {
                a: pair.0.clone(),
                b: pair.1.clone(),
            },
            created_by: d.user.clone(),
            created_at: d.created_at,
            last_seq: 0,
        };
        s.convs.insert(d.id, Conv::new(conv.clone()));
        s.directs.insert(pair.clone(), d.id);
        s.insert_member(d.id, &pair.0, Role::Member, d.created_at)?;
        s.insert_member(d.id, &pair.1, Role::Member, d.created_at)?;
        Ok((conv, true))
    }

    async fn conversation(&self, id: ConversationId) -> Result<Option<Conversation>> {
        Ok(self.state.lock().convs.get(&id).map(|c| c.conv.clone()))
    }

    async fn room_by_name(&self, name: &str) -> Result<Option<Conversation>> {
        let s = self.state.lock();
        Ok(s.room_names
            .get(name)
            .and_then(|id| s.convs.get(id))
            .map(|c| c.conv.clone()))
    }

    async fn delete_conversation(&self, id: ConversationId) -> Result<()> {
        let mut s = self.state.lock();
        let c = s
            .convs
            .remove(&id)
            .ok_or_else(|| missing_conversation(id))?;
        match &c.conv.kind {
            ConversationKind::Room { name, .. } => {
                s.room_names.remove(name);
            }
            ConversationKind::Direct { a, b } => {
                s.directs.remove(&(a.clone(), b.clone()));
            }
        }
        for user in c.members.keys() {
            if let Some(set) = s.user_convs.get_mut(user) {
                set.remove(&id);
            }
        }
        for m in &c.messages {
            if let Some(cid) = &m.client_id {
                s.client_ids.remove(&(m.sender.clone(), cid.clone()));
            }
        }
        Ok(())
    }

    async fn add_member(
        &self,
        conversation: ConversationId,
        user: &UserId,
        role: Role,
        joined_at: DateTime<Utc>,
        max_members: u32,
    ) -> Result<(Member, bool)> {
        let mut s = self.state.lock();
        let c = s.conv(conversation)?;
        if let Some(m) = c.members.get(user) {
            return Ok((m.clone(), false));
        }
        if c.members.len() >= max_members as usize {
            return Err(Error::conflict(format!(
                "the conversation has the maximum of {max_members} members"
            )));
        }
        Ok((s.insert_member(conversation, user, role, joined_at)?, true))
    }

    async fn remove_member(&self, conversation: ConversationId, user: &UserId) -> Result<bool> {
        let mut s = self.state.lock();
        let removed = s.conv_mut(conversation)?.members.remove(user).is_some();
        if let Some(set) = s.user_convs.get_mut(user) {
            set.remove(&conversation);
        }
        Ok(removed)
    }

    async fn member(&self, conversation: ConversationId, user: &UserId) -> Result<Option<Member>> {
        let s = self.state.lock();
        Ok(s.convs
            .get(&conversation)
            .and_then(|c| c.members.get(user))
            .cloned())
    }

    async fn members(
        &self,
        conversation: ConversationId,
        after: Option<&UserId>,
        limit: u32,
    ) -> Result<Vec<Member>> {
        let s = self.state.lock();
        let c = s.conv(conversation)?;
        let iter: Box<dyn Iterator<Item = &Member>> = match after {
            Some(a) => Box::new(
                c.members
                    .range::<UserId, _>((std::ops::Bound::Excluded(a), std::ops::Bound::Unbounded))
                    .map(|(_, m)| m),
            ),
            None => Box::new(c.members.values()),
        };
        Ok(iter.take(limit as usize).cloned().collect())
    }

    async fn conversations_of(&self, user: &UserId, limit: u32) -> Result<Vec<ConversationId>> {
        let s = self.state.lock();
        let mut ids: Vec<ConversationId> = s
            .user_convs
            .get(user)
            .map(|set| set.iter().copied().collect())
            .unwrap_or_default();
        ids.sort_unstable();
        ids.truncate(limit as usize);
        Ok(ids)
    }

    async fn list_conversations(
        &self,
        user: &UserId,
        limit: u32,
    ) -> Result<Vec<ConversationSummary>> {
        let s = self.state.lock();
        let mut out: Vec<ConversationSummary> = s
            .user_convs
            .get(user)
            .into_iter()
            .flatten()
            .filter_map(|id| s.convs.get(id))
            .filter_map(|c| {
                let m = c.members.get(user)?;
                Some(ConversationSummary {
                    conversation: c.conv.clone(),
                    role: m.role,
                    watermarks: m.watermarks,
                    last_message: c.messages.last().cloned(),
                    unread: c.unread(user),
                })
            })
            .collect();
        out.sort_by(|x, y| {
            y.last_activity()
                .cmp(&x.last_activity())
                .then(x.conversation.id.cmp(&y.conversation.id))
        });
        out.truncate(limit as usize);
        Ok(out)
    }

    async fn append(&self, msg: NewMessage) -> Result<Appended> {
        if self
            .failing_appends
            .load(std::sync::atomic::Ordering::SeqCst)
        {
            return Err(Error::unavailable("appends are switched off"));
        }
        let mut s = self.state.lock();
        if let Some(cid) = &msg.client_id {
            if let Some((conv, seq)) = s.client_ids.get(&(msg.sender.clone(), cid.clone())) {
                let original = s
                    .conv(*conv)?
                    .messages
                    .get((*seq - 1) as usize)
                    .cloned()
                    .ok_or_else(|| Error::internal("client id points nowhere"))?;
                return Ok(Appended {
                    message: original,
                    duplicate: true,
                });
            }
        }
        let c = s.conv_mut(msg.conversation)?;
        let seq = c.conv.last_seq + 1;
        let message = Message {
            id: msg.id,
            conversation: msg.conversation,
            seq,
            sender: msg.sender,
            client_id: msg.client_id,
            kind: msg.kind,
            body: msg.body,
            created_at: msg.created_at,
            edited_at: None,
            deleted_at: None,
            reply_to: msg.reply_to,
            thread: msg.thread,
            reply_count: 0,
            attachments: msg.attachments,
        };
        if let Some(root) = message
            .thread
            .and_then(|t| t.checked_sub(1))
            .and_then(|i| c.messages.get_mut(i as usize))
        {
            root.reply_count += 1;
        }
        c.conv.last_seq = seq;
        c.messages.push(message.clone());
        if let Some(cid) = &message.client_id {
            s.client_ids.insert(
                (message.sender.clone(), cid.clone()),
                (message.conversation, seq),
            );
        }
        Ok(Appended {
            message,
            duplicate: false,
        })
    }

    async fn history(
        &self,
        conversation: ConversationId,
        page: HistoryPage,
        limit: u32,
    ) -> Result<Vec<Message>> {
        let s = self.state.lock();
        let c = s.conv(conversation)?;
        let n = c.messages.len() as u64;
        let limit = u64::from(limit);
        let (from, to) = match page {
            HistoryPage::Before(before) => {
                let end = before.map_or(n, |b| b.saturating_sub(1).min(n));
                (end.saturating_sub(limit), end)
            }
            HistoryPage::After(after) => {
                let start = after.min(n);
                (start, (start + limit).min(n))
            }
        };
        Ok(c.messages[from as usize..to as usize].to_vec())
    }

    async fn thread(
        &self,
        conversation: ConversationId,
        root: Seq,
        page: HistoryPage,
        limit: u32,
    ) -> Result<Vec<Message>> {
        let s = self.state.lock();
        let c = s.conv(conversation)?;
        let in_thread = |m: &&Message| m.seq == root || m.thread == Some(root);
        let limit = limit as usize;
        Ok(match page {
            HistoryPage::Before(before) => {
                let before = before.unwrap_or(Seq::MAX);
                let mut page: Vec<Message> = c
                    .messages
                    .iter()
                    .rev()
                    .filter(|m| m.seq < before)
                    .filter(in_thread)
                    .take(limit)
                    .cloned()
                    .collect();
                page.reverse();
                page
            }
            HistoryPage::After(after) => c
                .messages
                .iter()
                .filter(|m| m.seq > after)
                .filter(in_thread)
                .take(limit)
                .cloned()
                .collect(),
        })
    }

    async fn message(&self, conversation: ConversationId, seq: Seq) -> Result<Option<Message>> {
        let s = self.state.lock();
        Ok(s.convs.get(&conversation).and_then(|c| {
            seq.checked_sub(1)
                .and_then(|i| c.messages.get(i as usize))
                .cloned()
        }))
    }

    async fn edit_message(
        &self,
        conversation: ConversationId,
        seq: Seq,
        body: &str,
        at: DateTime<Utc>,
    ) -> Result<Message> {
        let mut s = self.state.lock();
        let c = s.conv_mut(conversation)?;
        let m = seq
            .checked_sub(1)
            .and_then(|i| c.messages.get_mut(i as usize))
            .ok_or_else(|| Error::not_found(format!("message {seq}")))?;
        if m.is_deleted() {
            return Err(Error::conflict("a deleted message cannot be edited"));
        }
        m.body = body.to_owned();
        m.edited_at = Some(at);
        Ok(m.clone())
    }

    async fn delete_message(
        &self,
        conversation: ConversationId,
        seq: Seq,
        at: DateTime<Utc>,
    ) -> Result<Message> {
        let mut s = self.state.lock();
        let c = s.conv_mut(conversation)?;
        let m = seq
            .checked_sub(1)
            .and_then(|i| c.messages.get_mut(i as usize))
            .ok_or_else(|| Error::not_found(format!("message {seq}")))?;
        if m.is_deleted() {
            return Ok(m.clone());
        }
        m.body.clear();
        m.attachments.clear();
        m.deleted_at = Some(at);
        let deleted = m.clone();
        if let Some(root) = deleted
            .thread
            .and_then(|t| t.checked_sub(1))
            .and_then(|i| c.messages.get_mut(i as usize))
        {
            root.reply_count = root.reply_count.saturating_sub(1);
        }
        Ok(deleted)
    }

    async fn advance_watermarks(
        &self,
        conversation: ConversationId,
        user: &UserId,
        delivered: Option<Seq>,
        read: Option<Seq>,
    ) -> Result<Watermarks> {
        let mut s = self.state.lock();
        let c = s.conv_mut(conversation)?;
        let last = c.conv.last_seq;
        let m = c
            .members
            .get_mut(user)
            .ok_or_else(|| Error::not_found("not a member"))?;
        m.watermarks = m.watermarks.advance(delivered, read, last);
        Ok(m.watermarks)
    }

    async fn unread(&self, conversation: ConversationId, user: &UserId) -> Result<u64> {
        let s = self.state.lock();
        let c = s.conv(conversation)?;
        if !c.members.contains_key(user) {
            return Err(Error::not_found("not a member"));
        }
        Ok(c.unread(user))
    }

    async fn unread_total(&self, user: &UserId) -> Result<u64> {
        let s = self.state.lock();
        Ok(s.user_convs
            .get(user)
            .into_iter()
            .flatten()
            .filter_map(|id| s.convs.get(id))
            .map(|c| c.unread(user))
            .sum())
    }

    async fn friendship(&self, x: &UserId, y: &UserId) -> Result<Option<Friendship>> {
        let pair = direct_pair(x, y)?;
        Ok(self.state.lock().friendships.get(&pair).cloned())
    }

    async fn apply_friendship(
        &self,
        actor: &UserId,
        other: &UserId,
        action: FriendAction,
        at: DateTime<Utc>,
    ) -> Result<Friendship> {
        let pair = direct_pair(actor, other)?;
        let mut s = self.state.lock();
        let current = match s.friendships.get(&pair) {
            Some(f) => f.clone(),
            None => Friendship::empty(actor, other, at)?,
        };
        let next = current.apply(actor, action, at)?;
        if next.is_empty() {
            s.friendships.remove(&pair);
        } else {
            s.friendships.insert(pair, next.clone());
        }
        Ok(next)
    }

    async fn friendships(
        &self,
        user: &UserId,
        after: Option<&UserId>,
        limit: u32,
    ) -> Result<Vec<Friendship>> {
        let s = self.state.lock();
        let mut out: Vec<Friendship> = s
            .friendships
            .values()
            .filter(|f| &f.a == user || &f.b == user)
            .filter(|f| after.is_none_or(|after| f.other(user) > after))
            .cloned()
            .collect();
        out.sort_by(|x, y| x.other(user).cmp(y.other(user)));
        out.truncate(limit as usize);
        Ok(out)
    }
}
