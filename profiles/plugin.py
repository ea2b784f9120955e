"""The IHE actors this project ships, as one engine plugin (``engine.plugins: [profiles.plugin]``).

* ``empi:`` section of config.yaml: identity domains and matching (``profiles.empi.config``);
* destinations ``pix-iti8:``, ``pix-iti9:`` (``profiles.pix``) and ``pdq-iti21:`` (``profiles.pdq``);
* source ``pix-iti10:``, the PIX Update Notifications (``profiles.pix.notifications``);
* ``hie empi``: the review queue and the steward's commands (``profiles.empi.cli``); ``hie xds``;
* the EMPI's tables, an Alembic branch of their own (``profiles/empi/migrations``);
* ``XDS``: the ``xds:`` section, the ``soap://`` source, destinations ``xds-registry:`` (ITI-42,
  ITI-18) and ``xds-repository:`` (ITI-41, ITI-43), and the registry's and repository's tables,
  another branch (``profiles/xds/migrations``).
* ``CDA``: the ``cda:`` section, the ``cda-validate`` step, ``hie cda``, the check of the rule
  files, and the table of uploaded documents, a branch of its own (``profiles/cda``).
* ``DICOM``: the ``dicom:`` section, the ``dicom://`` source (Storage, Verification and
  Query/Retrieve SCP), the ``dicom-archive:`` destination that indexes what it receives, ``hie
  dicom``, the reconciliation job, and the archive's index tables, a branch of their own
  (``profiles/dicom``).
* ``HIP``: the ``hip:`` section, the ``hip://`` source (the national ``HIPMessageServer`` SOAP
  service) and the ``hip-service:`` destination that answers it (``profiles/hip``).
* the web console's sections (``engine.console.sections``): ``empi`` (the review queue, link, unlink,
  merge), ``documents`` (XDS documents per patient), ``uploads`` (CDA validation reports and the
  per-institution upload statistics), ``studies`` (DICOM studies), each in ``profiles/<x>/console.py``
  with its pages in ``profiles/<x>/pages/``.
* ``ATNA``: the Audit Record Repository: the ``syslog-udp://`` and ``syslog-tls://`` sources, the
  ``atna-repository:`` destination, the ``atna:`` section and the job that forwards the engine's
  own audit records, and its tables, a branch of their own (``profiles/atna``).
"""

from __future__ import annotations

from pathlib import Path

from engine.plugins import Plugin
from profiles.atna.plugin import ATNA
from profiles.cda.cli import cda
from profiles.cda.config import CdaConfig
from profiles.cda.console import SECTION as CDA_SECTION
from profiles.cda.report_cli import report
from profiles.cda.setup import validator_problems
from profiles.cda.stats import ROLLUP
from profiles.cda.step import CdaValidateStep
from profiles.dicom.cli import dicom
from profiles.dicom.config import DicomConfig
from profiles.dicom.console import SECTION as DICOM_SECTION
from profiles.dicom.destination import DicomArchiveDestination
from profiles.dicom.forward import DicomDestination
from profiles.dicom.index import follow_merge as studies_follow_merge
from profiles.dicom.jobs import RECONCILE
from profiles.dicom.publish import PUBLISH
from profiles.dicom.rad69 import ImagingSourceDestination
from profiles.dicom.source import DicomSource
from profiles.dicom.wado import WadoSource
from profiles.empi.cli import empi
from profiles.empi.config import EmpiConfig
from profiles.empi.console import SECTION as EMPI_SECTION
from profiles.hip.cli import hip
from profiles.hip.config import HipConfig
from profiles.hip.destination import HipServiceDestination
from profiles.hip.source import HipSource
from profiles.pdq.destinations import PdqQueryDestination
from profiles.pix.destinations import PixFeedDestination, PixQueryDestination
from profiles.pix.notifications import PixNotificationSource
from profiles.xds.cli import xds
from profiles.xds.config import XdsConfig
from profiles.xds.console import SECTION as XDS_SECTION
from profiles.xds.destinations import XdsRegistryDestination, XdsRepositoryDestination
from profiles.xds.registry import follow_merge as documents_follow_merge
from profiles.xds.source import SoapSource

__all__ = ["ATNA", "CDA", "DICOM", "HIP", "MERGE_FOLLOWERS", "PLUGIN", "PLUGINS", "XDS"]

# what must follow when the steward merges two persons (``hie empi``): the registry's documents and
# the archive's studies are kept per person (the running actors register the same with the EMPI)
MERGE_FOLLOWERS = [documents_follow_merge, studies_follow_merge]

PLUGIN = Plugin(
    name="ihe-actors",
    sections={"empi": EmpiConfig},
    destinations=[PixFeedDestination, PixQueryDestination, PdqQueryDestination],
    sources=[PixNotificationSource],
    commands=[empi],
    migrations=Path(__file__).parent / "empi" / "migrations",
    console=[EMPI_SECTION],
)

XDS = Plugin(
    name="ihe-xds",
    sections={"xds": XdsConfig},
    destinations=[XdsRegistryDestination, XdsRepositoryDestination],
    sources=[SoapSource],
    commands=[xds],
    migrations=Path(__file__).parent / "xds" / "migrations",
    console=[XDS_SECTION],
)

CDA = Plugin(
    name="cda",
    sections={"cda": CdaConfig},
    steps=[CdaValidateStep],
    checks=[validator_problems],
    commands=[cda, report],
    jobs=[ROLLUP],
    migrations=Path(__file__).parent / "cda" / "migrations",
    console=[CDA_SECTION],
)

HIP = Plugin(
    name="hip",
    sections={"hip": HipConfig},
    sources=[HipSource],
    destinations=[HipServiceDestination],
    commands=[hip],
)

DICOM = Plugin(
    name="dicom",
    sections={"dicom": DicomConfig},
    sources=[DicomSource, WadoSource],
    destinations=[DicomArchiveDestination, DicomDestination, ImagingSourceDestination],
    commands=[dicom],
    jobs=[RECONCILE, PUBLISH],
    migrations=Path(__file__).parent / "dicom" / "migrations",
    console=[DICOM_SECTION],
)

PLUGINS = [PLUGIN, XDS, CDA, HIP, DICOM, ATNA]
