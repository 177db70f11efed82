import sys
from pathlib import Path

# tests import the independent oracle as `from oracle import ...`
sys.path.insert(0, str(Path(__file__).resolve().parent))
