//! The `ChatService` implementation: each unary call authenticates, translates its
//! request into a [`Command`], runs it as the caller ([`Engine::execute_as`]) and answers
//! the reply; `Connect` opens a live stream (`connect`).
//!
//! [`Engine::execute_as`]: chat_core::Engine::execute_as

use chat_core::{Command, Error, Result};
use tonic::{Request, Response, Status, Streaming};

use crate::auth::{self, Caller};
use crate::connect::{self, FrameStream};
use crate::error::status_of;
use crate::state::GrpcState;
use crate::{proto, reference};
use chat_proto::convert::{self, Friend, FromReply, IntoCommand, Mark};

/// The generated server, kept inside the crate: `Connect` writes pre-encoded frames
/// (`connect::codec`), the other methods take and answer the messages of [`proto`].
#[allow(
    missing_docs,
    unreachable_pub,
    missing_debug_implementations,
    clippy::all,
    clippy::pedantic
)]
pub(crate) mod generated {
    use crate::proto::*;
    include!(concat!(env!("OUT_DIR"), "/chat.ChatService.rs"));
}

pub(crate) use generated::chat_service_server::{ChatService as Service, ChatServiceServer};

/// What every call is answered by.
#[derive(Debug, Clone)]
pub(crate) struct ChatService {
    pub(crate) state: GrpcState,
}

impl ChatService {
    /// Authenticates a call and takes it from the caller's budget.
    pub(crate) async fn caller<T>(&self, request: &Request<T>) -> Result<Caller> {
        let caller =
            auth::authenticate(&self.state, request.metadata(), request.extensions()).await?;
        self.state.take_call(&caller.identity.user)?;
        Ok(caller)
    }

    /// Runs a command as the caller.
    pub(crate) async fn run(&self, caller: &Caller, command: Command) -> Result<chat_core::Reply> {
        self.state
            .inner
            .engine
            .execute_as(&caller.identity.user, command)
            .await
    }

    /// One unary call: authenticate, translate, run, answer the reply of kind `R`.
    async fn unary<Q, R: FromReply>(
        &self,
        request: Request<Q>,
        command: impl FnOnce(Q) -> Result<Command>,
    ) -> Result<Response<R>, Status> {
        let answer = async {
            let caller = self.caller(&request).await?;
            let command = command(request.into_inner())?;
            let reply = convert::reply(self.run(&caller, command).await?)?;
            reply
                .reply
                .and_then(R::from_reply)
                .ok_or_else(|| Error::internal("the engine answered another kind of reply"))
        };
        answer.await.map(Response::new).map_err(|e| status_of(&e))
    }
}

#[tonic::async_trait]
impl Service for ChatService {
    async fn send_message(
        &self,
        request: Request<proto::SendMessageRequest>,
    ) -> Result<Response<proto::SendMessageResponse>, Status> {
        reference::send_message(self, request)
            .await
            .map(Response::new)
            .map_err(|e| status_of(&e))
    }

    async fn get_messages(
        &self,
        request: Request<proto::GetMessagesRequest>,
    ) -> Result<Response<proto::GetMessagesResponse>, Status> {
        reference::get_messages(self, request)
            .await
            .map(Response::new)
            .map_err(|e| status_of(&e))
    }

    async fn create_room(
        &self,
        request: Request<proto::CreateRoomRequest>,
    ) -> Result<Response<proto::RoomReply>, Status> {
        self.unary(request, IntoCommand::into_command).await
    }

    async fn join(
        &self,
        request: Request<proto::JoinRequest>,
    ) -> Result<Response<proto::RoomReply>, Status> {
        self.unary(request, IntoCommand::into_command).await
    }

    async fn leave(
        &self,
        request: Request<proto::LeaveRequest>,
    ) -> Result<Response<proto::OkReply>, Status> {
        self.unary(request, IntoCommand::into_command).await
    }

    async fn invite(
        &self,
        request: Request<proto::InviteRequest>,
    ) -> Result<Response<proto::RoomReply>, Status> {
        self.unary(request, IntoCommand::into_command).await
    }

    async fn members(
        &self,
        request: Request<proto::MembersRequest>,
    ) -> Result<Response<proto::MembersReply>, Status> {
        self.unary(request, IntoCommand::into_command).await
    }

    async fn open_direct(
        &self,
        request: Request<proto::OpenDirectRequest>,
    ) -> Result<Response<proto::DirectReply>, Status> {
        self.unary(request, IntoCommand::into_command).await
    }

    async fn send(
        &self,
        request: Request<proto::SendRequest>,
    ) -> Result<Response<proto::SentReply>, Status> {
        self.unary(request, IntoCommand::into_command).await
    }

    async fn edit(
        &self,
        request: Request<proto::EditRequest>,
    ) -> Result<Response<proto::MessageReply>, Status> {
        self.unary(request, IntoCommand::into_command).await
    }

    async fn delete(
        &self,
        request: Request<proto::DeleteRequest>,
    ) -> Result<Response<proto::MessageReply>, Status> {
        self.unary(request, IntoCommand::into_command).await
    }

    async fn history(
        &self,
        request: Request<proto::HistoryRequest>,
    ) -> Result<Response<proto::HistoryReply>, Status> {
        self.unary(request, IntoCommand::into_command).await
    }

    async fn mark_delivered(
        &self,
        request: Request<proto::MarkRequest>,
    ) -> Result<Response<proto::MarksReply>, Status> {
        self.unary(request, |r| convert::mark(r, Mark::Delivered))
            .await
    }

    async fn mark_read(
        &self,
        request: Request<proto::MarkRequest>,
    ) -> Result<Response<proto::MarksReply>, Status> {
        self.unary(request, |r| convert::mark(r, Mark::Read)).await
    }

    async fn typing(
        &self,
        request: Request<proto::TypingRequest>,
    ) -> Result<Response<proto::OkReply>, Status> {
        self.unary(request, IntoCommand::into_command).await
    }

    async fn list_conversations(
        &self,
        request: Request<proto::ListConversationsRequest>,
    ) -> Result<Response<proto::ConversationsReply>, Status> {
        self.unary(request, IntoCommand::into_command).await
    }

    async fn unread_total(
        &self,
        request: Request<proto::UnreadTotalRequest>,
    ) -> Result<Response<proto::UnreadReply>, Status> {
        self.unary(request, IntoCommand::into_command).await
    }

    async fn online_friends(
        &self,
        request: Request<proto::OnlineFriendsRequest>,
    ) -> Result<Response<proto::OnlineReply>, Status> {
        self.unary(request, IntoCommand::into_command).await
    }

    async fn friend_request(
        &self,
        request: Request<proto::UserRequest>,
    ) -> Result<Response<proto::FriendReply>, Status> {
        self.unary(request, |r| convert::friend(r, Friend::Request))
            .await
    }

    async fn friend_accept(
        &self,
        request: Request<proto::UserRequest>,
    ) -> Result<Response<proto::FriendReply>, Status> {
        self.unary(request, |r| convert::friend(r, Friend::Accept))
            .await
    }

    async fn friend_decline(
        &self,
        request: Request<proto::UserRequest>,
    ) -> Result<Response<proto::FriendReply>, Status> {
        self.unary(request, |r| convert::friend(r, Friend::Decline))
            .await
    }

    async fn friend_cancel(
        &self,
        request: Request<proto::UserRequest>,
    ) -> Result<Response<proto::FriendReply>, Status> {
        self.unary(request, |r| convert::friend(r, Friend::Cancel))
            .await
    }

    async fn friend_remove(
        &self,
        request: Request<proto::UserRequest>,
    ) -> Result<Response<proto::FriendReply>, Status> {
        self.unary(request, |r| convert::friend(r, Friend::Remove))
            .await
    }

    async fn block(
        &self,
        request: Request<proto::UserRequest>,
    ) -> Result<Response<proto::FriendReply>, Status> {
        self.unary(request, |r| convert::friend(r, Friend::Block))
            .await
    }

    async fn unblock(
        &self,
        request: Request<proto::UserRequest>,
    ) -> Result<Response<proto::FriendReply>, Status> {
        self.unary(request, |r| convert::friend(r, Friend::Unblock))
            .await
    }

    async fn list_friends(
        &self,
        request: Request<proto::ListFriendsRequest>,
    ) -> Result<Response<proto::FriendsReply>, Status> {
        self.unary(request, IntoCommand::into_command).await
    }

    async fn resume(
        &self,
        request: Request<proto::ResumeRequest>,
    ) -> Result<Response<proto::ResumedReply>, Status> {
        self.unary(request, IntoCommand::into_command).await
    }

    type ConnectStream = FrameStream;

    async fn connect(
        &self,
        request: Request<Streaming<proto::ClientFrame>>,
    ) -> Result<Response<Self::ConnectStream>, Status> {
        connect::open(self.state.clone(), request).await
    }
}
