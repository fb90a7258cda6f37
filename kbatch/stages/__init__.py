"""Stages: ``pandas.DataFrame -> pandas.DataFrame`` functions run on one partition."""

from kbatch.stages.base import Stage
from kbatch.stages.encode import Encode
from kbatch.stages.morph import MorphAnalyze
from kbatch.stages.normalize import NormalizeText
from kbatch.stages.subword import SubwordTokenize

__all__ = ["Encode", "MorphAnalyze", "NormalizeText", "Stage", "SubwordTokenize"]
