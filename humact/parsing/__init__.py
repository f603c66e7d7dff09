"""Part-level action parsing (Kinetics-TPS): every person's 10 part boxes and part states per frame,
and the video's action (`humact parse`). See docs/parsing.md.

    dataset.py    the Kinetics-TPS release layout and TPS folders -> TpsDataset
    tracks.py     perception of TPS videos (cached), tracks matched to annotated humans, frame pixels
    labels.py     part groups, System 1's video-level part-state labels, the most-frequent baseline
    language.py   all-MiniLM-L6-v2 (PyTorch BERT + `tokenizers`) for the part-state language priors
    detector.py   the pose-guided part detector (keypoint dots on the person crop, anchor-free head)
    system1.py    System 1: 7 skeleton recognisers on video-level labels, fused, spread to frames
    system2.py    System 2: part features, relevance, multi-label states, language priors, LSTM -> action
    fit.py        the seeded multi-task training loop of the detector and System 2
    predict.py    training everything (`humact parse-train`); perception -> part boxes -> states -> action
                  per video and the official files (`humact parse`)
"""
