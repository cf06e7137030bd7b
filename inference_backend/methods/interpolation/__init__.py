"""Classical interpolation: the baseline every learned method is measured against."""
