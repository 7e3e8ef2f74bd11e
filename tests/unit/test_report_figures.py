import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from anomaly.study import report_figures  # noqa: E402


def test_lens_maps_wrap_many_arms_into_rows_with_one_map_and_profile_each(tmp_path, monkeypatch):
    lens = {"weight_map": np.eye(4).tolist(), "lag_profile": [1.0, 0.5, 0.25, 0.1]}
    lenses = {f"arm{i}": (2, lens) for i in range(8)}
    figures = []
    monkeypatch.setattr(plt, "close", figures.append)  # keep the figure to look at it
    report_figures.lens_maps(lenses, tmp_path / "lens.png", per_row=6)
    (fig,) = figures
    assert (tmp_path / "lens.png").exists()
    grid = np.array(fig.axes).reshape(4, 6)  # 8 arms: two rows of (map, profile)
    shown = np.array([[ax.get_visible() for ax in row] for row in grid])
    assert shown[:2].all() and shown[2:, :2].all() and not shown[2:, 2:].any()
    assert [grid[2 * (j // 6), j % 6].get_title().split("\n")[0] for j in range(8)] == list(lenses)
    assert len(grid[3, 1].lines) == 1  # arm7's lag profile sits under arm7's map
