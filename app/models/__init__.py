"""Every model, imported here so Alembic's autogenerate sees the whole metadata."""

from app.models.api_keys import ApiKey
from app.models.enrollments import Enrollment, EnrollmentAddress
from app.models.erasure import ContactErasure, HashedSuppression
from app.models.events import CampaignEvent
from app.models.instances import COUNTER_COLUMNS, CampaignInstance, InstanceTransition
from app.models.live import InstanceActivity
from app.models.live_holds import LiveKeyHold
from app.models.outcomes import EventOutcome, InstanceCounterShard
from app.models.rate_limits import RateLimitBucket
from app.models.replies import ReplyClassification
from app.models.sending import Dispatch, SendQuota, Suppression, SuppressionChange
from app.models.templates import CampaignTemplate, EmailStep, LinkedInStep

__all__ = [
    "COUNTER_COLUMNS",
    "ApiKey",
    "CampaignEvent",
    "CampaignInstance",
    "CampaignTemplate",
    "ContactErasure",
    "Dispatch",
    "EmailStep",
    "Enrollment",
    "EnrollmentAddress",
    "EventOutcome",
    "HashedSuppression",
    "InstanceActivity",
    "InstanceCounterShard",
    "InstanceTransition",
    "LinkedInStep",
    "LiveKeyHold",
    "RateLimitBucket",
    "ReplyClassification",
    "SendQuota",
    "Suppression",
    "SuppressionChange",
]
