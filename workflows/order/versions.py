"""Which branch of a change an order takes, without a marker on every new order.

A change that alters commands for orders already running goes behind
`workflow.patched(id)`: the first order to take the new branch records a marker, and
the SDK upserts the TemporalChangeVersion search attribute, two history events on every
order started since, for as long as the patch stays in the code. Deprecating the patch
(`workflow.deprecate_patch`) still records the marker, flagged deprecated; only removing
the call saves the events, and that breaks the replay of an order (or a recorded
history) that took the old branch.

So an order carries the saga version it was started with (`OrderInput.saga_version`,
set by the API; 1 in inputs made before it was carried):

- an order of version 2 takes every patch that came before version 2 without a marker
  (`patched_or_v2`), and the version 2 changes (`since_v2`); no order of version 2 ever
  ran the code before them, so neither needs a marker to replay;
- an order of version 1 takes what its history says, as before;
- an order of version 3 also takes fewer steps (`since_v3`): the order recorded and its
  payment created in one, and after payment the record, settlement, notification (and
  release, without a receipt hold) in one. Orders of version 2 keep their steps, so their
  histories replay; no order of version 3 ever ran the steps apart.

A patch added later for orders already running (a fix, say) still uses workflow.patched.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.saga import MERGED_STEPS, OrderInput

MARKERLESS = 2  # the first version that takes the patches before it without markers


def since_v2(order: OrderInput) -> bool:
    """Whether the order was started at version 2 or later."""
    return order.saga_version >= MARKERLESS


def since_v3(order: OrderInput) -> bool:
    """Whether the order was started at version 3 or later (the merged steps)."""
    return order.saga_version >= MERGED_STEPS


def patched_or_v2(patch_id: str, order: OrderInput) -> bool:
    """`workflow.patched(patch_id)` for an order of version 1; True, with no marker, for
    later ones. Only for patches that came before version 2."""
    return since_v2(order) or workflow.patched(patch_id)
