"""The reference chat service's three calls from Python (grpcio), over mutual TLS.

Run by scripts/grpc-interop.sh, which generates the client from proto/chat.proto, makes
the certificates and starts a server. Tokens are HS256 JWTs signed with
$CHAT_JWT_SECRET (`sub` is the user).

The reference's scenarios, with their requests and asserts as written:
  1. SendMessage to room_001 as user_123;
  2. GetMessages of room_001 with limit 10 and offset 0: two messages (user_123's, then
     user_456's) and total_count 2;
  3. SendMessage with `encrypted: true` over mutual TLS: status "sent_encrypted".
Scenario 2 runs first so that room_001 holds exactly its two messages when read. Over
TLS every send reports "sent_encrypted", so scenario 1 runs over TLS (status
"sent_encrypted") and once more in plaintext, where it answers "sent" as written.
"""

import argparse
import base64
import hashlib
import hmac
import json
import os
import sys
import time


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def token(user: str) -> str:
    secret = os.environ["CHAT_JWT_SECRET"].encode()
    now = int(time.time())
    header = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    claims = b64url(json.dumps({"sub": user, "iat": now, "nbf": now, "exp": now + 3600}).encode())
    signing_input = f"{header}.{claims}".encode()
    signature = b64url(hmac.new(secret, signing_input, hashlib.sha256).digest())
    return f"{header}.{claims}.{signature}"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--gen", required=True, help="directory of chat_pb2*.py")
    parser.add_argument("--tls-dir", required=True, help="ca-cert.pem, client-cert.pem, client-key.pem")
    parser.add_argument("--plain", help="plaintext address (scenario 1 is also sent there)")
    parser.add_argument("--tls", required=True, help="mutual-TLS address")
    args = parser.parse_args()
    sys.path.insert(0, args.gen)
    import grpc  # noqa: E402
    import chat_pb2  # noqa: E402
    import chat_pb2_grpc  # noqa: E402

    def read(name: str) -> bytes:
        with open(os.path.join(args.tls_dir, name), "rb") as f:
            return f.read()

    credentials = grpc.ssl_channel_credentials(
        root_certificates=read("ca-cert.pem"),
        private_key=read("client-key.pem"),
        certificate_chain=read("client-cert.pem"),
    )
    secure = grpc.secure_channel(
        args.tls, credentials, options=[("grpc.ssl_target_name_override", "localhost")]
    )
    tls_stub = chat_pb2_grpc.ChatServiceStub(secure)
    plain_stub = None
    if args.plain:
        plain_stub = chat_pb2_grpc.ChatServiceStub(grpc.insecure_channel(args.plain))

    def auth(user: str):
        return [("authorization", f"Bearer {token(user)}")]

    results = []

    def check(name: str, ok: bool, detail: str = "") -> None:
        results.append(ok)
        print(f"{'ok  ' if ok else 'FAIL'} {name}{': ' + detail if detail and not ok else ''}")

    # The rooms and their members (the reference service had them already).
    tls_stub.Join(chat_pb2.JoinRequest(room="room_001", create=True), metadata=auth("user_123"), timeout=10)
    tls_stub.Join(chat_pb2.JoinRequest(room="room_001"), metadata=auth("user_456"), timeout=10)
    tls_stub.Join(chat_pb2.JoinRequest(room="secure_room", create=True), metadata=auth("user_789"), timeout=10)

    # Scenario 2: Get Messages.
    for user, text in (("user_123", "Hello!"), ("user_456", "Hi there!")):
        tls_stub.SendMessage(
            chat_pb2.SendMessageRequest(room_id="room_001", user_id=user, message=text),
            metadata=auth(user),
            timeout=10,
        )
    got = tls_stub.GetMessages(
        chat_pb2.GetMessagesRequest(room_id="room_001", limit=10, offset=0),
        metadata=auth("user_123"),
        timeout=10,
    )
    check("get: .messages | length == 2", len(got.messages) == 2, str(got))
    check("get: .messages[0].user_id == user_123", got.messages[0].user_id == "user_123")
    check("get: .messages[1].user_id == user_456", got.messages[1].user_id == "user_456")
    check("get: .total_count == 2", got.total_count == 2, str(got.total_count))
    check("get: texts", [m.message for m in got.messages] == ["Hello!", "Hi there!"])
    page = tls_stub.GetMessages(
        chat_pb2.GetMessagesRequest(room_id="room_001", limit=1, offset=1),
        metadata=auth("user_123"),
        timeout=10,
    )
    check("get: offset 1 is the second message", [m.user_id for m in page.messages] == ["user_456"])

    # Scenario 1: Send Message (over TLS, then in plaintext as written).
    request = chat_pb2.SendMessageRequest(
        room_id="room_001", user_id="user_123", message="Hello, world!", timestamp="2024-01-01T12:00:00Z"
    )
    stubs = [(tls_stub, "sent_encrypted")] + ([(plain_stub, "sent")] if plain_stub else [])
    for stub, status in stubs:
        sent = stub.SendMessage(request, metadata=auth("user_123"), timeout=10)
        where = "TLS" if stub is tls_stub else "plaintext"
        check(f"send ({where}): .message_id | type == string", isinstance(sent.message_id, str) and sent.message_id != "")
        check(f"send ({where}): .room_id == room_001", sent.room_id == "room_001")
        check(f"send ({where}): .user_id == user_123", sent.user_id == "user_123")
        check(f"send ({where}): .status == {status}", sent.status == status, sent.status)
        check(f"send ({where}): .message", sent.message == "Hello, world!")

    # Scenario 3: Secure Chat with TLS.
    secret = tls_stub.SendMessage(
        chat_pb2.SendMessageRequest(
            room_id="secure_room", user_id="user_789", message="Secret message", encrypted=True
        ),
        metadata=auth("user_789"),
        timeout=10,
    )
    check("secure: .status == sent_encrypted", secret.status == "sent_encrypted", secret.status)
    check("secure: .encrypted == true", secret.encrypted is True)
    check("secure: .room_id, .user_id, .message",
          (secret.room_id, secret.user_id, secret.message) == ("secure_room", "user_789", "Secret message"))

    # A refusal carries the stable code in its trailers.
    try:
        tls_stub.SendMessage(
            chat_pb2.SendMessageRequest(room_id="room_001", user_id="user_456", message="not me"),
            metadata=auth("user_123"),
            timeout=10,
        )
        check("another user's user_id is refused", False, "it was accepted")
    except grpc.RpcError as e:
        trailers = dict(e.trailing_metadata() or ())
        check("another user's user_id: PERMISSION_DENIED", e.code() == grpc.StatusCode.PERMISSION_DENIED, str(e.code()))
        check("another user's user_id: chat-error-code forbidden", trailers.get("chat-error-code") == "forbidden", str(trailers))

    passed = sum(1 for r in results if r)
    failed = len(results) - passed
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
