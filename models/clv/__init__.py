"""Customer lifetime value: BG/NBD (purchases, P(alive)) and Gamma-Gamma (spend), fitted by maximum likelihood.

Why our own scipy implementation rather than PyMC-Marketing (checked in a scratch Python 3.11 venv):

- Every PyMC-Marketing release since 0.19.3 (all of 1.x) needs Python >= 3.12; on our 3.11 pip resolves the
  frozen 0.19.2, which will get no fixes.
- It pulls in pymc, pytensor, arviz, numba and xarray (about a minute to install) and compiles C through
  pytensor on first use (warning that it found no BLAS): a cold BG/NBD MAP fit on CDNOW took 37 s, a short
  2 x 500-draw NUTS run 28 s with R-hat warnings; ours fits in well under a second.
- Its fits are Bayesian: with the default priors the BG/NBD MAP estimate on CDNOW stopped at a = 0.724,
  b = 2.133 (published MLE 0.793, 2.426; its Gamma-Gamma MAP did match) and the NUTS posterior means differ
  from the MLE by up to 4.5 % (Gamma-Gamma p 6.53 against 6.25), so it does not reproduce the published
  maximum-likelihood BG/NBD fit within 1 %.

The published likelihoods (Fader, Hardie & Lee 2005; Fader & Hardie 2013) are a few lines of scipy; here they
reproduce the CDNOW fit to the printed digits and refit in well under a second, which is what a service that
refits per retailer and per run needs. ``lifetimes`` is unmaintained. The printed conditional expectation turns
into inf x 0 = NaN for wholesale-sized histories; :mod:`models.clv.bgnbd` evaluates a transformed, stable form.
"""

from models.clv.bgnbd import BetaGeoModel
from models.clv.gamma_gamma import GammaGammaModel
from models.clv.lifetime_value import LifetimeValueModel, customer_lifetime_value

__all__ = ["BetaGeoModel", "GammaGammaModel", "LifetimeValueModel", "customer_lifetime_value"]
