"""Stages: ``pandas.DataFrame -> pandas.DataFrame`` steps run on one partition, declaring the
columns they need and write and the resource they run on (:mod:`kbatch.stages.base`)."""

from kbatch.stages.base import CPU, GPU, Stage
from kbatch.stages.embed import Embed
from kbatch.stages.encode import Encode
from kbatch.stages.morph import MorphAnalyze
from kbatch.stages.normalize import NormalizeText
from kbatch.stages.subword import SubwordTokenize

__all__ = ["CPU", "GPU", "Embed", "Encode", "MorphAnalyze", "NormalizeText", "Stage", "SubwordTokenize"]
