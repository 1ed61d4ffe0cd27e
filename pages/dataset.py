"""Dataset page: split sizes, class balance, sample faces, mean faces, pixel intensities."""

import streamlit as st

from core.labels import CLASS_NAMES
from core.stats import sample_per_class
from dashboard import dataset_view as view
from dashboard.charts import CHART_CONFIG, class_distribution_figure, intensity_histogram_figure
from dashboard.data_source import dataset_key, get_dataset
from dashboard.images import image_grid, stretch_contrast
from dashboard.router import require_router

require_router()

st.title("Dataset")
dataset = get_dataset()
if dataset is None:
    st.stop()
key = dataset_key(dataset)

view.split_metrics(dataset)

st.header("Class balance")
counts = dataset.class_counts()
as_share = st.toggle("Show each split's share (%) instead of counts", key=view.SHARE_KEY, bind="query-params")
st.plotly_chart(class_distribution_figure(counts, as_share=as_share), key="class_distribution", config=CHART_CONFIG)
st.markdown(view.imbalance_text(counts))

st.header("Sample faces")
split, classes, per_class, seed = view.sample_controls(dataset)
if not classes:
    st.info(view.NO_CLASS_HINT, icon=":material/filter_alt_off:")
picks = sample_per_class(dataset.labels, dataset.splits, per_class=per_class, seed=seed, split=split, classes=classes)
if classes:
    st.caption("Under each face: its file's name without the extension (FER2013's copy names each file by its split "
               "and a number), or its line in a CSV.")
for index, rows in picks.items():
    st.markdown(f"**{CLASS_NAMES[index]}** · {len(rows)} shown")
    image_grid(dataset.images[rows], [view.face_id_caption(i) for i in dataset.ids[rows]], size=84)

st.header("Mean face per class")
if not classes:
    st.info(view.NO_CLASS_HINT, icon=":material/filter_alt_off:")
else:
    where = f"in {split}" if split else "in every split"
    st.caption(f"Average of every image of each class {where} (the split and classes chosen under Sample faces), "
               "contrast stretched.")
    faces = view.cached_mean_faces(key, split, dataset)
    in_split = dataset.labels if split is None else dataset.labels[dataset.splits == split]
    captions = [f"{CLASS_NAMES[index]} (n={int((in_split == index).sum()):,})" for index in classes]
    image_grid([stretch_contrast(faces[index]) for index in classes], captions, size=112)

st.header("Pixel intensities")
st.plotly_chart(intensity_histogram_figure(view.cached_histograms(key, dataset)), key="intensity_histogram", config=CHART_CONFIG)
st.caption("Share of all pixels per intensity bin; a split shifted left is darker on average.")
