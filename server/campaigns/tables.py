"""Campaigns (docs/campaigns.md): a manager's plan to visit the accounts of an area, and
which account got which planned visit (a task of kind `visit`, a record like any other)."""

from piccolo.columns import UUID, Date, Integer, Text, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table


class Campaign(Table, tablename="campaigns"):
    """One campaign: its team, name, period, how its accounts were chosen."""

    id = UUID(primary_key=True)
    team_id = UUID(index=True)
    name = Varchar(length=200)
    starts_on = Date()
    ends_on = Date()
    created_by = UUID(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())
    selection = Text(default="{}")  # JSON: the area and the filters, as given
    accounts = Integer(default=0)
    skipped = Text(default="[]")  # JSON: accounts chosen but not planned, and why


class CampaignAccount(Table, tablename="campaign_accounts"):
    """An account of a campaign and its planned visit (`task_id`), for whom and when."""

    campaign_id = UUID(index=True)
    account_id = UUID()
    task_id = UUID(null=True, default=None)
    owner_id = UUID(null=True, default=None)
    due_at = Timestamptz(null=True, default=None)
