# SPDX-License-Identifier: Apache-2.0
"""Concurrent uploads of one org cannot overshoot its quota together."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, connections, transaction
from file_samples import chat, jsonl, named, stored_files
from waiting import wait_for

from potluck.accounts.models import Organization
from potluck.errors import InvalidInput
from potluck.files import services
from potluck.files.models import StoredFile

DATASET = jsonl(chat())


def waiting_on_locks() -> int:
    with connection.cursor() as cursor:
        # Statistics views are a snapshot per transaction unless cleared.
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                       "AND datname = current_database()")
        return cursor.fetchone()[0]


@pytest.mark.django_db(transaction=True)
def test_two_uploads_racing_for_the_last_room_one_wins(org, settings, file_storage):
    settings.ORG_FILES_QUOTA_BYTES = len(DATASET) * 3 // 2  # room for one of them
    outcomes: list[object] = []

    def upload(name: str) -> None:
        try:
            outcomes.append(services.create_file(org, upload=named(DATASET), filename=name,
                                                 purpose="fine-tune"))
        except InvalidInput as exc:
            outcomes.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=upload, args=(f"{i}.jsonl",)) for i in range(2)]
    # Hold the org row so that both uploads reach their quota check before either goes on:
    # an upload that checked without the lock would finish here and this wait would fail.
    with transaction.atomic():
        Organization.objects.select_for_update().get(pk=org.pk)
        for thread in threads:
            thread.start()
        wait_for(lambda: waiting_on_locks() == 2, 30, "both uploads to wait on the org lock")
    for thread in threads:
        thread.join(30)
    assert sorted(type(o).__name__ for o in outcomes) == ["InvalidInput", "StoredFile"]
    assert StoredFile.objects.count() == 1
    assert len(stored_files(file_storage)) == 1
