"""Detector backends, chosen by ``analytics.detector.type`` (:func:`analytics.detectors.base.create_detector`)."""
