"""Render the module's Qt Designer panel to a PNG for the README, without Slicer.

    python scripts/render_panel.py OUT.png      (needs PySide6; QT_QPA_PLATFORM=offscreen)

Slicer's own widgets (qMRMLNodeComboBox, ctkCollapsibleButton, ...) are replaced by the plain
Qt widgets they extend, and filled with what a user sees on first use; the layout, labels and
tooltips are those of Resources/UI/MRISuperResolution.ui.
"""
from __future__ import annotations

import os
import re
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
from PySide6.QtCore import QBuffer, QByteArray  # noqa: E402
from PySide6.QtUiTools import QUiLoader  # noqa: E402
from PySide6.QtWidgets import (  # noqa: E402
    QApplication,
    QComboBox,
    QDoubleSpinBox,
    QGroupBox,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
)

UI = Path(__file__).resolve().parent.parent / "MRISuperResolution" / "Resources" / "UI" / "MRISuperResolution.ui"
STAND_INS = {
    "qMRMLWidget": "QWidget",
    "ctkCollapsibleButton": "QGroupBox",
    "qMRMLNodeComboBox": "QComboBox",
    "ctkDoubleSpinBox": "QDoubleSpinBox",
    "ctkPathLineEdit": "QLineEdit",
}


def plain_ui() -> bytes:
    text = UI.read_text()
    text = re.sub(r"<customwidgets>.*?</customwidgets>", "", text, flags=re.S)
    text = re.sub(r"<connections>.*?</connections>", "", text, flags=re.S)
    # a ctkCollapsibleButton's "text" is a QGroupBox's "title"
    text = re.sub(r'(class="ctkCollapsibleButton" name="\w+">\s*<property name=")text(")', r"\1title\2", text)
    for custom, plain in STAND_INS.items():
        text = text.replace(f'class="{custom}"', f'class="{plain}"')
    # properties only the Slicer widgets know
    for name in ("nodeTypes", "showChildNodeTypes", "addEnabled", "removeEnabled", "noneEnabled", "renameEnabled", "filters", "collapsed"):
        text = re.sub(rf'<property name="{name}"[^>]*>.*?</property>', "", text, flags=re.S)
    return text.encode()


def main(out: str) -> None:
    app = QApplication(sys.argv[:1])
    data = QByteArray(plain_ui())
    buffer = QBuffer(data)
    panel = QUiLoader().load(buffer)
    find = panel.findChild
    find(QComboBox, "inputSelector").addItem("T1 axial 4mm")
    find(QComboBox, "methodComboBox").addItems(["res-srdiff", "interpolation"])
    find(QComboBox, "lesionMaskSelector").addItem("None")
    for name in ("outputVolumeSelector", "outputVarianceSelector", "outputLesionFilledSelector"):
        find(QComboBox, name).addItem("Create new volume")
    find(QLineEdit, "pythonPathLineEdit").setPlaceholderText("(Slicer's Python)")
    panel.findChild(QGroupBox, "modelsCollapsibleButton").setMaximumHeight(170)
    labels = {
        "methodDescriptionLabel": "Res-SRDiff: 4-step residual-shifting diffusion from the up-sampled scan; samples give a variance map.<br><i>Expected time: CPU ~60-90 s per sample (2 cores); GPU a few seconds</i>",
        "statusLabel": "sample 2/4: 212/398 slices - about 95 s left",
    }
    for name, text in labels.items():
        find(QLabel, name).setText(text)
    for name, value in (("targetXSpinBox", 1.0), ("targetYSpinBox", 1.0), ("targetZSpinBox", 4.0)):
        find(QDoubleSpinBox, name).setValue(value)
    find(QSpinBox, "samplesSpinBox").setValue(4)
    find(QPushButton, "applyButton").setText("Cancel")
    find(QPushButton, "applyButton").setEnabled(True)
    find(QProgressBar, "progressBar").setValue(55)
    models = find(QTableWidget, "modelsTable")
    models.setRowCount(1)
    for column, value in enumerate(["res-srdiff", "res-srdiff", "15 MB", "", "bundled"]):
        models.setItem(0, column, QTableWidgetItem(value))
    panel.resize(400, 860)
    panel.show()
    app.processEvents()
    panel.grab().save(out)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "panel.png")
