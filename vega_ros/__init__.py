"""vega_ros: the robot runtime (numpy, OpenCV, rclpy, ONNX Runtime / TensorRT; never torch)."""

__version__ = "0.1.0"
