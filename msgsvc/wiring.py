"""msgsvc's object graph, built in one place: for the process and for the tests.

``build`` takes what differs between a running process and a test (the id
source, the clock, how routing reaches sessions and push, the task group
routing runs in) and wires everything else the same way for both, so the
domain the tests exercise is the one that serves.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from chatmesh.clock import Clock
from chatmesh.ratelimit import RateLimiter
from chatmesh.redis_client import RedisClient
from chatmesh.revocations import Revocations
from chatmesh.store_observer import observed
from chatmesh.tasks import TaskGroup
from chatmesh.tracing import NO_TRACING, Tracing
from msgsvc.access import Access
from msgsvc.accounts import Accounts
from msgsvc.budgets import RedisUserBudgets, UserBudgets
from msgsvc.client_frames import ClientFrameHandler
from msgsvc.conversation_list import ConversationLister
from msgsvc.devices import DeviceCheck
from msgsvc.effects import Effects
from msgsvc.group_receipts import GroupReceipts
from msgsvc.groups import MAX_CHANNEL_MEMBERS, MAX_GROUP_MEMBERS, Groups
from msgsvc.history import HistoryReader
from msgsvc.media.objects import ObjectStore
from msgsvc.media.service import MediaService
from msgsvc.media.settings import MediaSettings
from msgsvc.media.store import PostgresMediaStore
from msgsvc.media.sweeper import MediaSweeper
from msgsvc.message_log import MessageLog
from msgsvc.messaging import Messaging
from msgsvc.push_settings import PushSettings
from msgsvc.receipts import ReceiptTracker
from msgsvc.recovery import RouteRecovery
from msgsvc.routing import Router
from msgsvc.sending import IdSource, MessageSender
from msgsvc.storage.accounts import PostgresAccountStore
from msgsvc.storage.claims import LegacyClaims, RedisClaimStore
from msgsvc.storage.directory import PostgresDirectory
from msgsvc.storage.directory_cache import CachingDirectory
from msgsvc.storage.groups import GroupStore
from msgsvc.storage.messages import MessageStore
from msgsvc.storage.mutes import PostgresMutes
from msgsvc.storage.route_journal import RouteJournal
from msgsvc.summaries import Summarizer
from msgsvc.sync import MAX_SYNC_CONVERSATIONS, SyncReader
from msgsvc.typing_activity import TypingIndicators


@dataclass(frozen=True, slots=True)
class Msgsvc:
    """Everything one msgsvc instance serves with."""

    messaging: Messaging
    frames: ClientFrameHandler  # client frames arriving over gateway streams
    accounts: Accounts  # the DirectoryService's domain
    journal: RouteJournal
    recovery: RouteRecovery
    devices: DeviceCheck  # told of removals, so it forgets them at once
    media_sweeper: MediaSweeper


def build(
    *,
    pg_pool: asyncpg.Pool,
    redis_client: RedisClient,
    key_prefix: str,
    messages: MessageStore,
    ids: IdSource,
    clock: Clock,
    instance_id: str,
    router: Router,
    tasks: TaskGroup,
    log: MessageLog,
    objects: ObjectStore,
    media_settings: MediaSettings | None = None,
    legacy_claims: LegacyClaims = LegacyClaims.READ,
    max_sync_conversations: int = MAX_SYNC_CONVERSATIONS,
    max_group_members: int = MAX_GROUP_MEMBERS,
    max_channel_members: int = MAX_CHANNEL_MEMBERS,
    budgets: UserBudgets | None = None,
    tracing: Tracing = NO_TRACING,
) -> Msgsvc:
    if budgets is None:
        budgets = RedisUserBudgets(RateLimiter(redis_client, key_prefix))
    # Every store is observed (timed, traced) below any cache in front of it.
    messages = observed(messages, store="cassandra", component="messages", tracing=tracing)
    directory = CachingDirectory(
        observed(
            PostgresDirectory(pg_pool), store="postgresql", component="directory", tracing=tracing
        )
    )
    account_store = observed(
        PostgresAccountStore(pg_pool), store="postgresql", component="accounts", tracing=tracing
    )
    devices = DeviceCheck(account_store, clock)
    group_store = observed(
        GroupStore(pg_pool), store="postgresql", component="groups", tracing=tracing
    )
    journal = observed(
        RouteJournal(redis_client, key_prefix, instance_id),
        store="redis",
        component="journal",
        tracing=tracing,
    )
    claims = observed(
        RedisClaimStore(redis_client, key_prefix, legacy=legacy_claims),
        store="redis",
        component="claims",
        tracing=tracing,
    )
    access = Access(directory)
    accounts = Accounts(account_store, Revocations(redis_client, key_prefix), clock)
    summarizer = Summarizer(directory, messages)
    media_settings = media_settings or MediaSettings()
    media_store = observed(
        PostgresMediaStore(pg_pool), store="postgresql", component="media", tracing=tracing
    )
    objects = observed(objects, store="s3", component="media", tracing=tracing)
    media = MediaService(store=media_store, objects=objects, settings=media_settings, clock=clock)
    group_receipts = GroupReceipts(
        access=access, directory=directory, messages=messages, router=router
    )
    messaging = Messaging(
        sender=MessageSender(
            directory=directory,
            claims=claims,
            messages=messages,
            ids=ids,
            clock=clock,
            devices=devices,
            journal=journal,
            log=log,
            budgets=budgets,
            media=media,
        ),
        history=HistoryReader(access, messages, clock),
        sync=SyncReader(
            access=access,
            directory=directory,
            messages=messages,
            summarizer=summarizer,
            clock=clock,
            max_conversations=max_sync_conversations,
        ),
        receipts=ReceiptTracker(access, directory, messages),
        conversations=ConversationLister(directory, summarizer),
        groups=Groups(
            store=group_store,
            directory=directory,
            messages=messages,
            ids=ids,
            clock=clock,
            devices=devices,
            journal=journal,
            log=log,
            max_members=max_group_members,
            max_channel_members=max_channel_members,
        ),
        group_receipts=group_receipts,
        effects=Effects(router, journal, tasks, group_receipts),
        push_settings=PushSettings(accounts, access, PostgresMutes(pg_pool), clock),
        media=media,
    )
    return Msgsvc(
        messaging=messaging,
        frames=ClientFrameHandler(
            messaging, devices, budgets, TypingIndicators(access=access, router=router, tasks=tasks)
        ),
        accounts=accounts,
        journal=journal,
        recovery=RouteRecovery(journal, directory, messages, router, clock, group_store, log),
        devices=devices,
        media_sweeper=MediaSweeper(media_store, objects, media_settings, clock),
    )
