"""How the locked (crop-fit, NPR) model scores aligned face crops vs its own center crops, on the test split."""
import csv, numpy as np
from pathlib import Path
from PIL import Image
from deepfake_detector.inference.images import load_image, decode_image
from deepfake_detector.inference.face_detection import FaceDetector
from deepfake_detector.inference.face_alignment import align_face, alignment_matrix
from ai_edge_litert.interpreter import Interpreter
from sklearn.metrics import roc_auc_score

rows=[r for r in csv.DictReader(open("artifacts/evaluation/predictions.csv")) if r["split"]=="test"]
it=Interpreter(model_path="artifacts/export/model.tflite", num_threads=2); it.allocate_tensors()
inp=it.get_input_details()[0]; out=it.get_output_details()[0]
def score(x):
    it.set_tensor(inp["index"], x[None].astype(np.float32)); it.invoke(); return float(it.get_tensor(out["index"]).ravel()[0])
det=FaceDetector()
root=Path("artifacts/data_ingestion/dataset")
labels=[];center=[];aligned=[];native=[];scales=[]
for r in rows:
    path=root/r["path"]; img=decode_image(path)
    faces=det.detect(img)
    if not faces: continue
    f=faces[0]
    labels.append(int(r["label"]))
    center.append(score(load_image(path,224,fit="crop")))
    aligned.append(score(align_face(img,f,224).pixels.astype(np.float32)))
    # native scale: no resampling when the eyes are about level, a 224 square centred on the eyes' midpoint
    (rx,ry),(lx,ly)=f.landmarks["right_eye"],f.landmarks["left_eye"]
    mx,my=(rx+lx)/2,(ry+ly)/2
    x0=int(round(min(max(mx-112,0),img.shape[1]-224))); y0=int(round(min(max(my-0.42*224,0),img.shape[0]-224)))
    native.append(score(img[y0:y0+224,x0:x0+224].astype(np.float32)))
    scales.append(np.hypot(*alignment_matrix(f,224)[0,:2]))
labels=np.array(labels)
print("faces found", len(labels), "of", len(rows), "; alignment scale median %.2f (min %.2f max %.2f)"%(np.median(scales),min(scales),max(scales)))
for name,s in (("center crop (how the model was trained)",center),("aligned face, resampled",aligned),("native-scale face crop, no resampling",native)):
    s=np.array(s); print(f"{name}: AUC {roc_auc_score(labels,s):.3f}; mean P(fake) real {s[labels==0].mean():.3f} fake {s[labels==1].mean():.3f}")
