import os

from piccolo.conf.apps import AppConfig

from server.core.tables import (
    Account,
    Attachment,
    Conflict,
    Contact,
    Deal,
    ErasedRecord,
    Erasure,
    HistoryCut,
    HistoryEntry,
    MergedRecord,
    Note,
    OrgSetting,
    Rejection,
    ScopeMove,
    ScopeUsageRow,
    Task,
    Visit,
    WriteBudget,
)

CURRENT_DIRECTORY = os.path.dirname(os.path.abspath(__file__))

APP_CONFIG = AppConfig(
    app_name="records",
    migrations_folder_path=os.path.join(CURRENT_DIRECTORY, "piccolo_migrations"),
    table_classes=[
        Account,
        Contact,
        Visit,
        Note,
        Task,
        Deal,
        Conflict,
        Rejection,
        ScopeMove,
        WriteBudget,
        ScopeUsageRow,
        HistoryEntry,
        OrgSetting,
        Attachment,
        Erasure,
        ErasedRecord,
        HistoryCut,
        MergedRecord,
    ],
)
