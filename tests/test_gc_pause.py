"""The re-decide loop's pause of the cycle collector is scoped: nested and overlapping users
share it, and the last to leave puts the collector back as it was."""

import gc
import threading
import weakref

from crm_qualify.connector.sync.gc_pause import YOUNG, fewer_collections


def test_young_collections_are_rarer_inside_and_everything_is_restored_after():
    before = gc.get_threshold()
    with fewer_collections():
        assert gc.get_threshold()[0] == max(YOUNG, before[0])
        assert gc.get_threshold()[1:] == before[1:]
        assert gc.get_freeze_count() > 0  # what existed is left out of full collections
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_nested_and_overlapping_users_restore_only_when_the_last_one_leaves():
    before = gc.get_threshold()
    inside, leave = threading.Event(), threading.Event()

    def other_run() -> None:
        with fewer_collections():
            inside.set()
            leave.wait(5)

    thread = threading.Thread(target=other_run)
    with fewer_collections():
        thread.start()
        assert inside.wait(5)
        with fewer_collections():
            pass
        assert gc.get_threshold()[0] == max(YOUNG, before[0])
    assert gc.get_threshold()[0] == max(YOUNG, before[0])  # the other run is still inside
    leave.set()
    thread.join(5)
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_an_error_inside_still_restores_the_collector():
    before = gc.get_threshold()
    try:
        with fewer_collections():
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_objects_the_process_froze_itself_stay_frozen():
    gc.freeze()
    try:
        with fewer_collections():
            pass
        assert gc.get_freeze_count() > 0  # not unfrozen by the pause
    finally:
        gc.unfreeze()


def test_a_cycle_made_inside_is_freed_when_the_last_user_leaves():
    class Node:
        pass

    before = gc.get_threshold()
    gc.set_threshold(0)  # no automatic collection: only the pause's own can free the cycle
    try:
        with fewer_collections():
            gc.set_threshold(0)
            node = Node()
            node.self = node  # type: ignore[attr-defined]
            alive = weakref.ref(node)
            del node
            assert alive() is not None  # a cycle: reference counting alone keeps it
    finally:
        gc.set_threshold(*before)
    assert alive() is None
