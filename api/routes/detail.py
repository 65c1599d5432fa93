"""Drill-downs of one campaign: contacts, calls, the attempt report (CSV), the contact export, batches, activity,
the compliance record, email messages (list and CSV)."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse

from api import models
from api.deps import ID_PATTERN, CampaignId, ReadPrincipal, RedisDep
from api.read_model import calls, compliance, contacts, exports, messages
from api.read_model.campaigns import batches_page, ensure_campaign
from api.read_model.runs import run_ranges
from api.responses import OrjsonResponse
from engine.validation.events import BATCH_STATUSES, CONTACT_STATUSES
from engine.views.activity import ACTIVITY_KINDS, CALLBACK_FILTERS, OUTCOME_FILTERS
from engine.views.message_detail import MESSAGE_STATUSES
from engine.vocab import VIOLATION_KINDS

router = APIRouter(tags=["detail"])

ContactStatus = Literal[CONTACT_STATUSES]  # type: ignore[valid-type]
CallbackFilter = Literal[("all",) + CALLBACK_FILTERS]  # type: ignore[valid-type]
OutcomeFilter = Literal[OUTCOME_FILTERS]  # type: ignore[valid-type]
ActivityKind = Literal[ACTIVITY_KINDS]  # type: ignore[valid-type]
BatchStatus = Literal[BATCH_STATUSES]  # type: ignore[valid-type]
CALLBACK_HELP = ("all (default: no filter); requested: the attempt's contact has asked for a callback; "
                 "pending: its contact has a callback open now; completed / cancelled: its contact has a "
                 "callback closed that way")
OUTCOME_HELP = "an ended attempt's outcome, or active: dialed and not ended"
RunQuery = Query(None, ge=1, le=2**63 - 1, description="only the attempts of this run (restart) number")
ViolationFilter = Literal[VIOLATION_KINDS]  # type: ignore[valid-type]
VIOLATION_HELP = ("only the attempts that violate this compliance guard now (SPEC §3 Compliance guards): "
                  "calling_hours or abandon_redial")


@router.get("/v1/campaigns/{campaign_id}/contacts", response_model=models.ContactsPage)
async def list_contacts(r: RedisDep, p: ReadPrincipal, campaign_id: CampaignId,
                        status: ContactStatus | None = Query(None, description="only contacts now in this status"),
                        contact_id: str | None = Query(None, pattern=ID_PATTERN,
                                                          description="only this contact (a page of 0 or 1)"),
                        limit: int = Query(50, ge=1, le=200), offset: int = Query(0, ge=0, le=10**9)):
    """Contacts ordered by id, each with its attempts trail (`contact_id`: one contact's whole trail)."""
    await ensure_campaign(r, p.org_id, campaign_id)
    return OrjsonResponse(await contacts.contacts_page(r, p.org_id, campaign_id, status=status,
                                                       contact_id=contact_id, limit=limit, offset=offset))


@router.get("/v1/campaigns/{campaign_id}/calls", response_model=models.CallsPage)
async def list_calls(r: RedisDep, p: ReadPrincipal, campaign_id: CampaignId,
                     page: int = Query(1, ge=1, le=10**7), limit: int = Query(50, ge=1, le=200),
                     order: Literal["desc", "asc"] = Query("desc", description="by dial time"),
                     callback: CallbackFilter = Query("all", description=CALLBACK_HELP),
                     outcome: OutcomeFilter | None = Query(None, description=OUTCOME_HELP),
                     run: int | None = RunQuery,
                     violation: ViolationFilter | None = Query(None, description=VIOLATION_HELP)):
    """Call attempts (newest dial first by default) with transcript and recording URL; `callback`,
    `outcome`, `run` and `violation` filter them (an attempt must match each given), `total` counts what
    they keep."""
    await ensure_campaign(r, p.org_id, campaign_id)
    runs = await run_ranges(r, p.org_id, campaign_id)
    return OrjsonResponse(await calls.calls_page(r, p.org_id, campaign_id, runs, page=page, limit=limit, order=order,
                                                 callback=callback, outcome=outcome, run=run, violation=violation))


@router.get("/v1/campaigns/{campaign_id}/attempt-report.csv", response_class=StreamingResponse,
            responses={200: {"content": {"text/csv": {}}}})
async def get_attempt_report(r: RedisDep, p: ReadPrincipal, campaign_id: CampaignId,
                             callback: CallbackFilter = Query("all", description=CALLBACK_HELP),
                             outcome: OutcomeFilter | None = Query(None, description=OUTCOME_HELP),
                             run: int | None = RunQuery,
                             violation: ViolationFilter | None = Query(None, description=VIOLATION_HELP)):
    """One CSV row per attempt in dial-time order, streamed, with the run it belongs to; the same
    filters as `/calls`."""
    runs = await run_ranges(r, p.org_id, campaign_id)  # 404 before the stream starts
    lines = exports.attempt_report_lines(r, p.org_id, campaign_id, runs, callback=callback, outcome=outcome, run=run,
                                         violation=violation)
    return StreamingResponse(lines, media_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": f'attachment; filename="{campaign_id}-attempts.csv"'})


@router.get("/v1/campaigns/{campaign_id}/export", response_class=StreamingResponse,
            responses={200: {"content": {"text/csv": {}, "application/json": {}}}})
async def export_contacts(r: RedisDep, p: ReadPrincipal, campaign_id: CampaignId,
                          format: Literal["csv", "json"] = Query("json")):
    """Every contact of the campaign with its attempts trail (JSON array) or one CSV row per contact; streamed."""
    await ensure_campaign(r, p.org_id, campaign_id)
    if format == "json":
        return StreamingResponse(exports.contacts_json(r, p.org_id, campaign_id), media_type="application/json")
    return StreamingResponse(exports.contacts_csv(r, p.org_id, campaign_id), media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition": f'attachment; filename="{campaign_id}-contacts.csv"'})


@router.get("/v1/campaigns/{campaign_id}/batches", response_model=models.BatchesPage)
async def list_batches(r: RedisDep, p: ReadPrincipal, campaign_id: CampaignId,
                       skip: int = Query(0, ge=0, le=10**9), limit: int = Query(50, ge=1, le=200),
                       status: BatchStatus | None = Query(None)):
    """Per-batch status, contact counters (by status, buckets) and retry breakdown, ordered by batch id."""
    return OrjsonResponse(await batches_page(r, p.org_id, campaign_id, status=status, skip=skip, limit=limit))


@router.get("/v1/campaigns/{campaign_id}/activity", response_model=models.ActivityPage)
async def get_activity(r: RedisDep, p: ReadPrincipal, campaign_id: CampaignId,
                       kind: ActivityKind | None = Query(None, description="only entries of this kind"),
                       page: int = Query(1, ge=1, le=10**7), limit: int = Query(50, ge=1, le=200)):
    """What happened to the campaign, newest first: creation and config changes (field, from, to),
    status changes, pauses and resumes, batch status changes and abandon alerts (engine/views/activity.py)."""
    await ensure_campaign(r, p.org_id, campaign_id)
    return OrjsonResponse(await contacts.activity_page(r, p.org_id, campaign_id, kind=kind, page=page, limit=limit))


@router.get("/v1/campaigns/{campaign_id}/compliance", response_model=models.ComplianceRecord,
            responses={200: {"content": {"text/csv": {}}}})
async def get_compliance_record(r: RedisDep, p: ReadPrincipal, campaign_id: CampaignId,
                                format: Literal["json", "csv"] = Query("json", description=(
                                    "csv: the auditor's record, one row per period and per violating attempt "
                                    "(docs/api.md)"))):
    """The compliance record: the 30-day abandon periods (as `/stats` `abandon.periods`), both guards
    (settings, counts, last times) and the attempts that violate each now, with dial time, local time
    and zone, and for a redial the abandoned call it followed."""
    rec = await compliance.compliance_record(r, p.org_id, campaign_id)
    if format == "json":
        return OrjsonResponse(rec)
    return StreamingResponse(compliance.compliance_csv(rec), media_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": f'attachment; filename="{campaign_id}-compliance.csv"'})


# ---------------------------------------------------------------- email messages

MessageStatus = Literal[MESSAGE_STATUSES]  # type: ignore[valid-type]
MESSAGE_STATUS_HELP = ("only the messages whose furthest stage is this now (sent < delivered < bounced < opened < "
                       "clicked < replied < unsubscribed < complained)")


@router.get("/v1/campaigns/{campaign_id}/messages", response_model=models.MessagesPage)
async def list_campaign_messages(r: RedisDep, p: ReadPrincipal, campaign_id: CampaignId,
                                 status: MessageStatus | None = Query(None, description=MESSAGE_STATUS_HELP),
                                 page: int = Query(1, ge=1, le=10**7), limit: int = Query(50, ge=1, le=200),
                                 order: Literal["desc", "asc"] = Query("desc", description="by sent time")):
    """An email campaign's messages (newest send first by default), each with the time of its earliest event
    of every type and its furthest stage (`status`); a voice campaign has none."""
    await ensure_campaign(r, p.org_id, campaign_id)
    return OrjsonResponse(await messages.messages_page(r, p.org_id, campaign_id, status=status, page=page,
                                                       limit=limit, order=order))


@router.get("/v1/campaigns/{campaign_id}/messages.csv", response_class=StreamingResponse,
            responses={200: {"content": {"text/csv": {}}}})
async def export_campaign_messages_csv(r: RedisDep, p: ReadPrincipal, campaign_id: CampaignId,
                                       status: MessageStatus | None = Query(None, description=MESSAGE_STATUS_HELP)):
    """One CSV row per email message, oldest send first, streamed; the columns of `/messages`."""
    await ensure_campaign(r, p.org_id, campaign_id)  # 404 before the stream starts
    return StreamingResponse(messages.messages_csv(r, p.org_id, campaign_id, status), media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition": f'attachment; filename="{campaign_id}-messages.csv"'})
