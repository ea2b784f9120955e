"""The WS/T 500-2016 shared document types (电子病历共享文档规范, parts 1-53): what each document's
header must say about its type (china-hie.md §4, §5.1).

Part N of WS/T 500 is the document ``C00NN`` (code system ``2.16.156.10011.2.4``, the 卫生信息共享文档
规范编码体系) with templateId ``2.16.156.10011.2.1.1.(20+N)``; the rule holds for all 53 sample
documents of the standard. The titles are the standard's; the per-document schemas of
``xsd/china-hip/cdas/`` spell some of them differently (``门急诊病历`` for ``门(急)诊病历``,
``病重（病危）护理记录``, ``24小时内入出院记录``), so those spellings are accepted too.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DOCUMENT_CODE_SYSTEM", "DOCUMENT_TYPES", "TEMPLATE_ROOT", "DocumentType", "document_type"]

DOCUMENT_CODE_SYSTEM = "2.16.156.10011.2.4"
TEMPLATE_ROOT = "2.16.156.10011.2.1.1"

_TITLES = """
病历概要 门(急)诊病历 急诊留观病历 西药处方 中药处方 检查报告 检验报告 治疗记录 一般手术记录
麻醉术前访视记录 麻醉记录 麻醉术后访视记录 输血记录 待产记录 阴道分娩记录 剖宫产记录 一般护理记录
病重(病危)护理记录 手术护理记录 生命体征测量记录 出入量记录 高值耗材使用记录 入院评估 护理计划
出院评估与指导 手术知情同意书 麻醉知情同意书 输血治疗同意书 特殊检查及特殊治疗同意书 病危(重)通知书
其他知情同意书 住院病案首页 中医住院病案首页 入院记录 24h内入出院记录 24h内入院死亡记录
首次病程记录 日常病程记录 上级医师查房记录 疑难病例讨论记录 交接班记录 转科记录 阶段小结 抢救记录
会诊记录 术前小结 术前讨论 术后首次病程记录 出院记录 死亡记录 死亡病例讨论记录 住院医嘱 出院小结
""".split()  # noqa: SIM905 (WS/T 500.1 to 500.53 in order; as a list literal it would be 53 lines)


@dataclass(frozen=True)
class DocumentType:
    code: str  # C0001 ... C0053
    part: int  # WS/T 500.N
    title: str
    aliases: tuple[str, ...] = ()  # other titles in use for the same document

    @property
    def template_id(self) -> str:
        return f"{TEMPLATE_ROOT}.{20 + self.part}"

    def title_matches(self, title: str) -> bool:
        """The title as the standard writes it, with full- or half-width brackets, or without the
        bracketed part's brackets (``门急诊病历``)."""
        norm = _normalise(title)
        own = _normalise(self.title)
        return norm in (own, own.replace("(", "").replace(")", ""), *map(_normalise, self.aliases))


def _normalise(text: str) -> str:
    return "".join(text.split()).replace("（", "(").replace("）", ")")


# the titles the per-document schemas use where they differ from the standard's list
_ALIASES = {31: ("其他知情告知同意书",), 35: ("24小时内入出院记录",), 36: ("24小时内入院死亡记录",)}

DOCUMENT_TYPES: dict[str, DocumentType] = {
    f"C{n:04d}": DocumentType(f"C{n:04d}", n, title, _ALIASES.get(n, ()))
    for n, title in enumerate(_TITLES, start=1)
}


def document_type(code: str) -> DocumentType | None:
    return DOCUMENT_TYPES.get(code.strip())
