"""The SOP classes and transfer syntaxes the archive accepts (PS3.4 Annex B.5, PS3.5 Annex A).

The storage classes a regional archive receives from hospital PACS: projection and cross-sectional
images, ultrasound, secondary capture, the enhanced CT/MR objects, structured reports and key
object selections (the XDS-I.b manifests). A channel may narrow or widen the list
(``sop_classes:`` on the source, by keyword or UID). Instances are kept as received, in any of the
transfer syntaxes below; nothing is decompressed on the way in.
"""

from __future__ import annotations

__all__ = ["KOS", "QUERY_RETRIEVE", "STORAGE", "TRANSFER_SYNTAXES"]

KOS = "1.2.840.10008.5.1.4.1.1.88.59"

STORAGE: dict[str, str] = {
    "ComputedRadiographyImageStorage": "1.2.840.10008.5.1.4.1.1.1",
    "DigitalXRayImageStorageForPresentation": "1.2.840.10008.5.1.4.1.1.1.1",
    "DigitalXRayImageStorageForProcessing": "1.2.840.10008.5.1.4.1.1.1.1.1",
    "DigitalMammographyXRayImageStorageForPresentation": "1.2.840.10008.5.1.4.1.1.1.2",
    "CTImageStorage": "1.2.840.10008.5.1.4.1.1.2",
    "EnhancedCTImageStorage": "1.2.840.10008.5.1.4.1.1.2.1",
    "UltrasoundMultiFrameImageStorage": "1.2.840.10008.5.1.4.1.1.3.1",
    "MRImageStorage": "1.2.840.10008.5.1.4.1.1.4",
    "EnhancedMRImageStorage": "1.2.840.10008.5.1.4.1.1.4.1",
    "UltrasoundImageStorage": "1.2.840.10008.5.1.4.1.1.6.1",
    "SecondaryCaptureImageStorage": "1.2.840.10008.5.1.4.1.1.7",
    "MultiFrameGrayscaleByteSecondaryCaptureImageStorage": "1.2.840.10008.5.1.4.1.1.7.2",
    "MultiFrameGrayscaleWordSecondaryCaptureImageStorage": "1.2.840.10008.5.1.4.1.1.7.3",
    "MultiFrameTrueColorSecondaryCaptureImageStorage": "1.2.840.10008.5.1.4.1.1.7.4",
    "XRayAngiographicImageStorage": "1.2.840.10008.5.1.4.1.1.12.1",
    "XRayRadiofluoroscopicImageStorage": "1.2.840.10008.5.1.4.1.1.12.2",
    "PositronEmissionTomographyImageStorage": "1.2.840.10008.5.1.4.1.1.128",
    "GrayscaleSoftcopyPresentationStateStorage": "1.2.840.10008.5.1.4.1.1.11.1",
    "BasicTextSRStorage": "1.2.840.10008.5.1.4.1.1.88.11",
    "EnhancedSRStorage": "1.2.840.10008.5.1.4.1.1.88.22",
    "ComprehensiveSRStorage": "1.2.840.10008.5.1.4.1.1.88.33",
    "KeyObjectSelectionDocumentStorage": KOS,
    "EncapsulatedPDFStorage": "1.2.840.10008.5.1.4.1.1.104.1",
}

# Patient Root and Study Root, FIND / MOVE / GET (PS3.4 C.6)
QUERY_RETRIEVE = [
    "1.2.840.10008.5.1.4.1.2.1.1",
    "1.2.840.10008.5.1.4.1.2.1.2",
    "1.2.840.10008.5.1.4.1.2.1.3",
    "1.2.840.10008.5.1.4.1.2.2.1",
    "1.2.840.10008.5.1.4.1.2.2.2",
    "1.2.840.10008.5.1.4.1.2.2.3",
]

TRANSFER_SYNTAXES = [
    "1.2.840.10008.1.2",  # Implicit VR Little Endian (the default every SCP must take)
    "1.2.840.10008.1.2.1",  # Explicit VR Little Endian
    "1.2.840.10008.1.2.1.99",  # Deflated Explicit VR Little Endian
    "1.2.840.10008.1.2.4.50",  # JPEG Baseline (Process 1)
    "1.2.840.10008.1.2.4.51",  # JPEG Extended (Process 2 & 4)
    "1.2.840.10008.1.2.4.57",  # JPEG Lossless, Non-Hierarchical (Process 14)
    "1.2.840.10008.1.2.4.70",  # JPEG Lossless, First-Order Prediction (Process 14, SV1)
    "1.2.840.10008.1.2.4.80",  # JPEG-LS Lossless
    "1.2.840.10008.1.2.4.81",  # JPEG-LS Lossy (Near-Lossless)
    "1.2.840.10008.1.2.4.90",  # JPEG 2000 (Lossless Only)
    "1.2.840.10008.1.2.4.91",  # JPEG 2000
    "1.2.840.10008.1.2.5",  # RLE Lossless
]
