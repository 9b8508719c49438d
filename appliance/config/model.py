"""Typed, immutable view of a validated profile. Field names are the schema's keys; defaults live
only in the schema, so every field is filled by the loader."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Point = tuple[float, float]
Size = tuple[int, int]
DistanceMethod = Literal["center_points", "four_corners", "calibrated"]


@dataclass(frozen=True)
class DeviceConfig:
    id: str
    hardware: str
    timezone: str
    name: str | None = None

    @property
    def display_name(self) -> str:
        return self.name or self.id


@dataclass(frozen=True)
class ModelConfig:
    path: str | None
    sha256: str | None
    architecture: str


@dataclass(frozen=True)
class DetectorConfig:
    backend: str
    model: ModelConfig
    input_size: Size | None
    class_id: int
    min_score: float
    nms_iou: float
    threads: int
    device: str
    precision: str
    performance_hint: str


@dataclass(frozen=True)
class TrackerConfig:
    algorithm: Literal["bytetrack", "kalman", "iou"]
    max_lost_s: float
    iou_threshold: float
    min_hits: int
    low_score: float


@dataclass(frozen=True)
class MotionConfig:
    enabled: bool
    min_changed: float
    max_interval_s: float


@dataclass(frozen=True)
class CalibrationPoint:
    image: Point
    floor: Point


@dataclass(frozen=True)
class CameraDistanceConfig:
    calibration: tuple[CalibrationPoint, ...] | None
    method: DistanceMethod | None = None


@dataclass(frozen=True)
class BoxFilterConfig:
    min_height_px: int | None
    max_height_px: int | None
    min_width_px: int | None
    max_width_px: int | None


@dataclass(frozen=True)
class ViolationAlertConfig:
    enabled: bool
    min_people: int
    min_duration_s: float
    cooldown_s: float
    clear_after_s: float
    channels: tuple[str, ...] = ()


@dataclass(frozen=True)
class OccupancyAlertConfig:
    min_duration_s: float
    hysteresis: int
    cooldown_s: float
    channels: tuple[str, ...] = ()


PlaneUnits = Literal["pixels", "floor_cm"]
Severity = Literal["low", "high", "critical"]


@dataclass(frozen=True)
class ZoneConfig:
    id: str
    polygon: tuple[Point, ...]
    units: PlaneUnits
    loitering_s: float | None
    exit_after_s: float
    name: str | None = None


@dataclass(frozen=True)
class LineConfig:
    id: str
    points: tuple[Point, ...]
    units: PlaneUnits
    in_side: Literal["left", "right"]
    hysteresis: float
    min_crossing_s: float
    name: str | None = None


@dataclass(frozen=True)
class CameraConfig:
    id: str
    source: str | int
    enabled: bool
    fps_cap: float | None
    resolution: Size | None
    distance: CameraDistanceConfig
    roi: tuple[Point, ...] | None
    tags: tuple[str, ...]
    live_view: bool
    box_filter: BoxFilterConfig
    zones: tuple[ZoneConfig, ...]
    lines: tuple[LineConfig, ...]
    name: str | None = None


@dataclass(frozen=True)
class LoiteringAlertConfig:
    enabled: bool
    cooldown_s: float
    channels: tuple[str, ...] = ()


@dataclass(frozen=True)
class MaskAlertConfig:
    enabled: bool
    max_unmasked_share: float
    min_people: int
    cooldown_s: float
    channels: tuple[str, ...] = ()


@dataclass(frozen=True)
class OccupancyRuleConfig:
    days: tuple[str, ...]
    start: str  # HH:MM, local
    end: str
    threshold: int | None


@dataclass(frozen=True)
class AreaConfig:
    id: str
    cameras: tuple[str, ...]
    zones: tuple[str, ...]  # CAMERA/ZONE
    entrances: tuple[str, ...]  # CAMERA/LINE
    occupancy_reset_at: str  # HH:MM, local
    occupancy_threshold: int | None
    occupancy_alert: OccupancyAlertConfig
    violation_alert: ViolationAlertConfig
    occupancy_schedule: tuple[OccupancyRuleConfig, ...] = ()
    loitering_alert: LoiteringAlertConfig = LoiteringAlertConfig(enabled=True, cooldown_s=60)
    mask_alert: MaskAlertConfig = MaskAlertConfig(enabled=False, max_unmasked_share=0.2, min_people=5, cooldown_s=600)
    name: str | None = None


@dataclass(frozen=True)
class SeverityConfig:
    low_s: float
    high_s: float
    critical_s: float


@dataclass(frozen=True)
class DistancingConfig:
    default_method: DistanceMethod
    threshold_cm: float
    person_height_cm: float
    min_episode_s: float
    episode_gap_s: float
    hysteresis_cm: float
    severity: SeverityConfig


@dataclass(frozen=True)
class FaceModelConfig:
    path: str | None
    sha256: str | None
    architecture: Literal["yunet", "rfb-masked-face"]


@dataclass(frozen=True)
class AnonymizerFacesConfig:
    enabled: bool
    model: FaceModelConfig
    min_score: float
    margin: float


@dataclass(frozen=True)
class MasksConfig:
    enabled: bool
    model: FaceModelConfig
    min_score: float
    min_face_px: float
    interval_s: float


@dataclass(frozen=True)
class AnonymizerConfig:
    enabled: bool
    method: Literal["blur", "pixelate"]
    head_fraction: float
    min_score: float
    margin: float
    faces: AnonymizerFacesConfig


@dataclass(frozen=True)
class TlsConfig:
    enabled: bool
    ca_file: str | None
    cert_file: str | None
    key_file: str | None
    insecure: bool


@dataclass(frozen=True)
class DiscoveryConfig:
    enabled: bool
    prefix: str


@dataclass(frozen=True)
class SpoolConfig:
    max_messages: int
    max_bytes: int
    max_age_s: float


@dataclass(frozen=True)
class MqttConfig:
    enabled: bool
    host: str
    port: int
    protocol: Literal["3.1.1", "5"]
    tls: TlsConfig
    username: str | None
    client_id: str | None
    topic_prefix: str
    qos: int
    state_interval_s: float
    detections_interval_s: float | None
    keepalive_s: int
    discovery: DiscoveryConfig
    spool: SpoolConfig
    password: str | None = None
    password_file: str | None = None


@dataclass(frozen=True)
class MetricsConfig:
    enabled: bool
    listen: str


@dataclass(frozen=True)
class ApiTlsConfig:
    cert_file: str | None
    key_file: str | None


@dataclass(frozen=True)
class ApiAuthConfig:
    enabled: bool
    token_ttl_s: int
    users_file: str | None
    jwt_secret: str | None = None
    jwt_secret_file: str | None = None


@dataclass(frozen=True)
class ApiConfig:
    enabled: bool
    listen: str
    cors_origins: tuple[str, ...]
    tls: ApiTlsConfig
    auth: ApiAuthConfig


@dataclass(frozen=True)
class EmailChannelConfig:
    id: str
    host: str
    port: int
    security: Literal["starttls", "tls", "none"]
    ca_file: str | None
    username: str | None
    sender: str
    to: tuple[str, ...]
    timeout_s: float
    password: str | None = None
    password_file: str | None = None


@dataclass(frozen=True)
class SlackChannelConfig:
    id: str
    url: str
    timeout_s: float
    url_file: str | None = None


@dataclass(frozen=True)
class RawDataConfig:
    enabled: bool
    interval_s: float
    format: Literal["appliance", "reference"]


@dataclass(frozen=True)
class WebhookChannelConfig:
    id: str
    url: str
    ca_file: str | None
    timeout_s: float
    raw_data: RawDataConfig
    authorization: str | None = None
    authorization_file: str | None = None


ChannelConfig = EmailChannelConfig | SlackChannelConfig | WebhookChannelConfig


@dataclass(frozen=True)
class ReportScheduleConfig:
    enabled: bool
    at: str  # HH:MM, local
    channels: tuple[str, ...]


@dataclass(frozen=True)
class WeeklyReportConfig(ReportScheduleConfig):
    day: str  # the weekday it is sent


@dataclass(frozen=True)
class NotificationsConfig:
    email: tuple[EmailChannelConfig, ...]
    slack: tuple[SlackChannelConfig, ...]
    webhooks: tuple[WebhookChannelConfig, ...]
    daily_report: ReportScheduleConfig
    weekly_report: WeeklyReportConfig
    snapshot_wait_s: float
    queue: SpoolConfig


@dataclass(frozen=True)
class ScreenshotsConfig:
    enabled: bool
    interval_s: float
    cameras: tuple[str, ...]


@dataclass(frozen=True)
class BackupConfig:
    enabled: bool
    interval_s: float
    keep: int


@dataclass(frozen=True)
class S3Config:
    enabled: bool
    bucket: str
    prefix: str
    endpoint_url: str | None
    region: str | None
    ca_file: str | None
    access_key_id: str | None
    timeout_s: float
    screenshots: ScreenshotsConfig
    backup: BackupConfig
    queue: SpoolConfig
    secret_access_key: str | None = None
    secret_access_key_file: str | None = None


@dataclass(frozen=True)
class EventLogConfig:
    sample_interval_s: float
    retention_days: int
    max_disk_mb: int


@dataclass(frozen=True)
class HistoryConfig:
    enabled: bool
    retention_days: int
    max_disk_mb: int
    max_query_days: int


@dataclass(frozen=True)
class StorageConfig:
    data_dir: str
    event_log: EventLogConfig
    history: HistoryConfig


@dataclass(frozen=True)
class OtaConfig:
    enabled: bool
    inbox: str
    state_dir: str
    trusted_keys: tuple[str, ...]
    health_check_s: int
    min_fps_ratio: float
    max_bundle_mb: int

    @property
    def active(self) -> bool:
        """Whether bundles are applied: on, and with a key to trust them by."""
        return self.enabled and bool(self.trusted_keys)


@dataclass(frozen=True)
class LoggingConfig:
    level: Literal["debug", "info", "warning", "error"]
    format: Literal["text", "json"]


@dataclass(frozen=True)
class RuntimeConfig:
    stall_timeout_s: float
    start_timeout_s: float
    restart_initial_s: float
    restart_max_s: float
    max_failures: int
    failure_window_s: float
    stop_timeout_s: float
    shared_detector: Literal["auto", "yes", "no"]
    status_interval_s: float


@dataclass(frozen=True)
class Profile:
    """A whole device profile."""

    schema_version: int
    device: DeviceConfig
    detector: DetectorConfig
    tracker: TrackerConfig
    motion: MotionConfig
    cameras: tuple[CameraConfig, ...]
    areas: tuple[AreaConfig, ...]
    distancing: DistancingConfig
    anonymizer: AnonymizerConfig
    masks: MasksConfig
    mqtt: MqttConfig
    metrics: MetricsConfig
    api: ApiConfig
    notifications: NotificationsConfig
    s3: S3Config
    storage: StorageConfig
    ota: OtaConfig
    logging: LoggingConfig
    runtime: RuntimeConfig

    def camera(self, camera_id: str) -> CameraConfig:
        return next(c for c in self.cameras if c.id == camera_id)

    def model_files(self) -> dict[tuple[str, ...], ModelConfig | FaceModelConfig]:
        """Every model file the runtime loads, by the profile key of its model, path set."""
        models: dict[tuple[str, ...], ModelConfig | FaceModelConfig] = {("detector", "model"): self.detector.model}
        if self.anonymizer.faces.enabled:
            models[("anonymizer", "faces", "model")] = self.anonymizer.faces.model
        if self.masks.enabled:
            models[("masks", "model")] = self.masks.model
        return {key: model for key, model in models.items() if model.path is not None}
