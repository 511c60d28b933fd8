"""Call every endpoint of the app with gradio_client (the README's client snippets, runnable).

    python app.py &                                   # or use the Space id instead of the URL
    python scripts/client_example.py [URL_OR_SPACE_ID]
"""
import sys

from gradio_client import Client, handle_file

client = Client(sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:7860/")
image, video = handle_file("examples/astronaut_sbi_fake.png"), handle_file("examples/astronaut_sbi.mp4")

# /predict_image(image, threshold): verdict, face boxes and probabilities
verdict, faces_png, result, report_json, report_html = client.predict(image, 0.5, api_name="/predict_image")
print("predict_image:", result["label"], result["fake_probability"], [f["box"] for f in result["faces"]])

# /explain_image(image, method, threshold): CAM of the fake output on each face
verdict, cam_png, cam, report_json, report_html = client.predict(image, "gradcam", 0.5, api_name="/explain_image")
print("explain_image:", cam["method"], cam["result"]["fake_probability"], [f["peak_xy"] for f in cam["faces"]])

# /grid_heatmap(image, grid, baseline, threshold): G x G signed changes of the fake probability
verdict, heatmap_png, occ, grid_csv, report_json, report_html = client.predict(image, 4, "mean", 0.5,
                                                                             api_name="/grid_heatmap")
print("grid_heatmap:", occ["grid"], occ["fake_probability"], occ["changes"])

# /analyze_video(video, frames, aggregation, importance, threshold): per-frame scores and importance
verdict, timeline_png, importance_png, gallery, res, report_json, report_html = client.predict(
    video, 16, "mean", "leave_one_out", 0.5, api_name="/analyze_video")
print("analyze_video:", res["label"], res["fake_probability"], res["frames_sampled"],
      [(f["timestamp_s"], f["fake_probability"], f["importance_leave_one_out"]) for f in res["frames"][:3]])
