"""Evaluation: how a trained model does on one split of the current dataset.

Predictions are cached on disk per model file, split and TTA mode
(``core.evaluate``) and in the process (``st.cache_data``), so changing a
view or coming back to the page does not predict again.
"""

import streamlit as st

from core.tta import TTA_LABELS, TTA_MODES
from dashboard import downloads
from dashboard import evaluation_widgets as widgets
from dashboard import export_widgets
from dashboard.charts import CHART_CONFIG
from dashboard.data_source import get_dataset
from dashboard.router import require_router
from dashboard.url_state import remember_choice, url_choice

require_router()

st.title("Evaluation")
dataset = get_dataset()
model_path = widgets.model_select_ui() if dataset is not None else None
if model_path is not None:
    downloads.model_download_ui(model_path, key="eval_model_download")
# Taking a model out of the studio sits with the model, above the evaluation: at the bottom it only appeared once
# a first evaluation had finished (38 s under load, walk s9), with nothing saying it was coming.
export_widgets.export_ui(dataset, model_path)

if dataset is not None and model_path is not None:
    splits = widgets.evaluable_splits(dataset)
    left, right = st.columns([3, 1], vertical_alignment="bottom")
    url_choice("eval_split", splits, splits[0], param="split", noun="split")
    url_choice("eval_tta", TTA_MODES, "none", param="tta", noun="test-time augmentation")
    split = left.selectbox("Split", splits, key="eval_split",
                           help="PublicTest and PrivateTest are evaluated apart; Training is listed last.")
    tta = right.selectbox("Test-time augmentation", TTA_MODES, key="eval_tta", format_func=TTA_LABELS.get,
                          help="Average the predictions on views of each face: its mirror image (flip), or the whole "
                               "face and its four corner crops, each mirrored (ten-crop, 10x the prediction time; views already "
                               "predicted for a smaller mode are reused)")
    remember_choice(split, param="split", default=splits[0])
    remember_choice(tta, param="tta", default="none")
    result = widgets.evaluation_ui(model_path, dataset, split, tta)
    if result is not None:
        images = dataset.subset(split).images  # rows align with the result's
        widgets.headline_ui(result)
        downloads.evaluation_downloads_ui(result, f"{downloads.model_package_name(model_path)[:-4]}-{split}-{tta}",
                                          key="eval_download")

        st.subheader("Confusion matrix")
        cell = widgets.confusion_ui(result)
        widgets.cell_gallery_ui(result, images, cell)

        st.subheader("Per-class accuracy")
        st.plotly_chart(widgets.per_class_accuracy_figure(result), key="eval_per_class", config=CHART_CONFIG)

        st.subheader("Classification report")
        widgets.report_ui(result)

        st.subheader("ROC and precision-recall curves")
        widgets.curves_ui(result)

        st.subheader("Predictions")
        widgets.gallery_ui(result, images)

