"""ChemActor: reactions <-> experimental descriptions <-> machine-executable action sequences.

Importing the package has no side effects; each stage lives in its own module
(``actions``, ``chem``, ``data``, ``generation``, ``selection``, ``training``, ``inference``,
``evaluation``, ``hub``) and is imported where it is used.
"""

__version__ = "0.1.0"
