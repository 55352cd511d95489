"""Push subscriptions of the users' devices."""

from piccolo.columns import UUID, Integer, Text, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table


class PushSubscription(Table, tablename="push_subscriptions"):
    id = UUID(primary_key=True)
    user_id = UUID(index=True)
    endpoint = Varchar(length=2048, unique=True)
    p256dh = Varchar(length=200)
    auth = Varchar(length=100)
    created_at = Timestamptz(default=TimestamptzNow())


class PushDelivery(Table, tablename="push_deliveries"):
    """One reminder to one subscription that has not gone out yet (retries with backoff)."""

    id = UUID(primary_key=True)
    task_id = UUID(index=True)
    subscription_id = UUID(index=True)
    payload = Text()
    attempts = Integer(default=0)
    next_attempt_at = Timestamptz(default=TimestamptzNow(), index=True)
    claimed_until = Timestamptz(null=True, default=None)
    last_error = Text(null=True, default=None)
    # The task's remind_at this reminder is for: a task moved to another time before the
    # message goes out is not reminded of the old one.
    remind_at = Timestamptz(null=True, default=None)


class PushKey(Table, tablename="push_keys"):
    """The server's VAPID key pair, kept with the data: every process behind a load balancer
    signs with the same key, and a restored backup brings the browsers' subscriptions back."""

    name = Varchar(length=40, primary_key=True)
    private_key = Text()
    created_at = Timestamptz(default=TimestamptzNow())
