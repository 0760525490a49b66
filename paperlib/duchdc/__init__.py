"""DUC/HDC (Wang et al., WACV 2018): the paper's experiments layer (``experiments``).

The methods themselves live where other papers share them: the DUC / deconvolution heads in
``paperlib.models.heads``, the DeepLab-v2 variants and HDC rates in ``paperlib.models``, the
gridding rule in ``paperlib.gridding``, the dense CRF in ``paperlib.crf``.
"""
