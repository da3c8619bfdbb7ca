"""The digest's chart: claims per motive per day as a stacked bar chart (PNG)."""

from __future__ import annotations

import io

__all__ = ["claims_per_motive_chart"]


def claims_per_motive_chart(days: list[str], counts: dict[str, list[int]]) -> bytes:
    """A stacked bar chart (PNG bytes): one bar per day, one colour per motive."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 4), dpi=80)
    try:
        bottom = [0] * len(days)
        for motive, values in counts.items():
            ax.bar([d[5:] for d in days], values, bottom=bottom, label=motive)
            bottom = [b + v for b, v in zip(bottom, values, strict=True)]
        ax.set_ylabel("new or updated claims")
        ax.set_title("Claims per motive, last 7 days")
        if counts:
            ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
        else:
            ax.text(0.5, 0.5, "no claims in these 7 days", ha="center", va="center", transform=ax.transAxes)
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
        return buf.getvalue()
    finally:
        plt.close(fig)
