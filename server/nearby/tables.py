"""What the geocoding job remembers between rounds.

A table of this feature's own, not of the records core (server/core/): it is the job's
bookkeeping, read and written only by server/nearby/geocoding.py, never synced and never
seen by a device, and it has none of a record's scope, seq or clocks. It only names an
account, as push_deliveries names a task.
"""

from piccolo.columns import UUID, BigInt, Integer, Varchar
from piccolo.table import Table


class GeocodingAttempt(Table, tablename="geocoding_attempts"):
    """One row per account the geocoder could not place yet: the address it tried (a changed
    address is tried again at once), whether it was not found or the service failed, and
    when a failed account may be tried again (docs/geo.md). While a round geocodes an
    account, its row is the claim (outcome "pending", retry_at the lease's end)."""

    account_id = UUID(primary_key=True)
    street = Varchar(length=200, null=True, default=None)
    city = Varchar(length=100, null=True, default=None)
    region = Varchar(length=100, null=True, default=None)
    postal_code = Varchar(length=20, null=True, default=None)
    country = Varchar(length=100, null=True, default=None)
    outcome = Varchar(length=20)  # "pending", "not_found" or "failed"
    failures = Integer(default=0)
    retry_at = BigInt(null=True, default=None)  # ms since the epoch
    attempted_at = BigInt()  # ms since the epoch
