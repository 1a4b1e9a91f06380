"""A Meshwork client in Python: grpcio stubs generated from proto/ alone, and nats-py on the
IDENTITY stream. It signs up and in, counts the users online, is refused the list of them (a
member is not an admin), and reads its own sign-in back from JetStream as a protobuf UserEvent.

Settings (defaults: `make dev`): MESHWORK_IDENTITY, MESHWORK_PRESENCE (host:port of the RPC
ports), MESHWORK_NATS (NATS URL). Stubs are imported from the directory in MESHWORK_STUBS, or
./gen. Exits non-zero when anything is not as described.
"""

import asyncio
import os
import sys
import uuid

sys.path.insert(0, os.environ.get("MESHWORK_STUBS", os.path.join(os.path.dirname(__file__), "gen")))

import grpc  # noqa: E402
import nats  # noqa: E402
from nats.js.api import ConsumerConfig, DeliverPolicy  # noqa: E402

from meshwork.identity.v1 import events_pb2, identity_pb2, identity_pb2_grpc  # noqa: E402
from meshwork.presence.v1 import presence_pb2, presence_pb2_grpc  # noqa: E402

IDENTITY = os.environ.get("MESHWORK_IDENTITY", "127.0.0.1:50051")
PRESENCE = os.environ.get("MESHWORK_PRESENCE", "127.0.0.1:50052")
NATS_URL = os.environ.get("MESHWORK_NATS", "nats://127.0.0.1:4222")


async def main() -> None:
    email = f"py-{uuid.uuid4().hex[:12]}@example.com"
    password = "a-python-passphrase"

    # Subscribe first (new messages only), so our own sign-in cannot be missed.
    nc = await nats.connect(NATS_URL)
    js = nc.jetstream()
    signed_in = await js.subscribe(
        "identity.v1.user.signed_in",
        ordered_consumer=True,
        config=ConsumerConfig(deliver_policy=DeliverPolicy.NEW),
    )

    async with grpc.aio.insecure_channel(IDENTITY) as channel:
        identity = identity_pb2_grpc.IdentityServiceStub(channel)
        user = (await identity.SignUp(identity_pb2.SignUpRequest(email=email, password=password, display_name="Py"))).user
        print(f"SignUp: {user.email} ({user.id}), roles {list(user.roles)}")
        token = (await identity.SignIn(identity_pb2.SignInRequest(email=email, password=password))).access_token
        print(f"SignIn: token {token[:16]}...")

    auth = (("authorization", f"Bearer {token}"),)
    async with grpc.aio.insecure_channel(PRESENCE) as channel:
        presence = presence_pb2_grpc.PresenceServiceStub(channel)
        # presence counts from the event stream, so the count catches up with the sign-in.
        for _ in range(50):
            count = (await presence.GetOnlineCount(presence_pb2.GetOnlineCountRequest(), metadata=auth)).count
            if count >= 1:
                break
            await asyncio.sleep(0.1)
        assert count >= 1, f"online count stayed {count}"
        print(f"GetOnlineCount: {count}")
        try:
            await presence.ListOnlineUsers(presence_pb2.ListOnlineUsersRequest(), metadata=auth)
            raise AssertionError("a member listed the users online")
        except grpc.aio.AioRpcError as error:
            assert error.code() == grpc.StatusCode.PERMISSION_DENIED, error
            print(f"ListOnlineUsers: refused, {error.code().name}")

    # The event identity published for this sign-in: CloudEvents headers, protobuf body.
    while True:
        message = await signed_in.next_msg(timeout=10)
        event = events_pb2.UserEvent.FromString(message.data)
        if event.WhichOneof("event") == "signed_in" and event.signed_in.email == email:
            break
    assert message.headers["ce-type"] == "meshwork.identity.v1.UserEvent", message.headers
    assert event.signed_in.user_id == user.id
    print(f"UserEvent.SignedIn from {message.subject}: user {event.signed_in.user_id}, session {event.signed_in.session_id}")
    await nc.close()


if __name__ == "__main__":
    asyncio.run(main())
