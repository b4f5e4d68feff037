"""Building blocks shared by the student encoder, the probe and the heads."""

from distill.nets.layers.attention import Attention
from distill.nets.layers.block import Block, Mlp
from distill.nets.layers.conv import ConvBNAct, ResidualUnit
from distill.nets.layers.patch_embed import PatchEmbed, sincos_pos_embed_2d

__all__ = ["Attention", "Block", "ConvBNAct", "Mlp", "PatchEmbed", "ResidualUnit", "sincos_pos_embed_2d"]
