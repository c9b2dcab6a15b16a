"""Synthetic community: 30-minute load and rooftop PV of N homes in an inland Southern California town.

This is the package's embedded default data set. It is **synthetic**: no measured series is shipped.
The model is small and physical where that is cheap, and calibrated to the 14 plausible measured homes
of the CityLearn 2022 set (Fontana, CA; see ``docs/data.md`` and ``benchmarks/calibrate_synthetic.py``):

* **Weather** (shared by all homes): daily mean temperature = approximate monthly normals of the
  inland Riverside/Fontana area (about 13 °C in January, 27 °C in August) plus an AR(1) daily
  anomaly; an asymmetric diurnal cycle (minimum near sunrise, maximum mid-afternoon, solar time)
  whose range shrinks on cloudy days.
  The sun's position comes from latitude 34.1 N, longitude 117.4 W, the equation of time and the US
  daylight-saving rules, so the data follow local clock time. Clear-sky irradiance (Haurwitz) is
  scaled by a clearness index: a random daily process (AR(1), month-dependent mean taken from the
  real homes' PV) plus intra-day variability on partly cloudy days.
* **PV**: every home's plane-of-array irradiance for its own tilt and azimuth (one matrix product for
  all homes), a cell-temperature loss, a system derate, a per-home performance factor, inverter clipping.
* **Load** = base + lighting + cooling + heating, times day-level and half-hour-level lognormal noise.
  Base follows 24-hour weekday/weekend shapes measured in the real homes (April and October, the
  months with least heating or cooling), shifted and reshaped per home (routine shift, midday
  presence, three random daily harmonics for a home's own habits). Cooling (heating) is a degree-day
  model: a day's energy grows with its mean temperature above (below) the home's balance point, and
  is spread over the day with the hour-of-day shape of the real homes' summer (winter) extra load.
  Lighting follows darkness in waking hours. Each home draws its expected annual energy (uniform
  6.6-13.9 MWh) and the share of each component; coefficients are normalised against a fixed
  reference climate, so the expected annual energy equals the draw.

Everything is vectorised over households; the only Python loops run over blocks of time.
Random streams are split per component (``SeedSequence.spawn``), and time series are drawn
row-major, so a shorter ``num_days`` gives exactly the first days of the full year.
"""

from __future__ import annotations

import calendar
from functools import lru_cache

import numpy as np
import pandas as pd

from energy_env.config import INTERVAL_HOURS, INTERVALS_PER_DAY
from energy_env.data.dataset import Dataset

# --- site ------------------------------------------------------------------------------------
LATITUDE_DEG = 34.1  # Fontana, CA (the CityLearn 2022 homes)
LONGITUDE_DEG = -117.43
STANDARD_MERIDIAN_DEG = -120.0  # Pacific Standard Time
_DAYS_PER_YEAR = 365.25

# --- load shapes measured in the real homes ----------------------------------------------------
# Mean 24-hour load shape (clock hour h = the hour starting at h:00, mean 1) of the 14 plausible
# CityLearn 2022 homes in April and October, each home normalised by its own mean first.
_BASE_SHAPE_WEEKDAY = np.array([
    0.90, 0.74, 0.65, 0.66, 0.67, 0.77, 0.90, 0.92, 1.03, 1.21, 1.29, 1.02,
    0.95, 0.91, 0.89, 0.95, 1.10, 1.19, 1.17, 1.25, 1.42, 1.26, 1.10, 1.05,
])
_BASE_SHAPE_WEEKEND = np.array([
    0.84, 0.65, 0.61, 0.58, 0.57, 0.55, 0.62, 0.85, 1.02, 1.37, 1.46, 1.23,
    1.22, 1.12, 1.17, 1.23, 1.29, 1.11, 1.03, 1.19, 1.25, 1.15, 1.00, 0.86,
])
# Weekend / weekday base energy: 1.18 in the real homes' April and October, 1.09 over their year
# (heating and cooling dilute it); on the base alone this gives ~1.09 overall.
_WEEKEND_LEVEL = 1.18

# Expected annual load per home, uniform on this range: mean 10.25 MWh, s.d. 2.1 MWh (real: 7.2-14.7
# MWh, mean 10.3, s.d. 2.2). The margin keeps weather-year swings (+-4%, 1 s.d.) inside 6-15 MWh.
_ANNUAL_LOAD_RANGE_KWH = (6_600.0, 13_900.0)

# --- climate (inland Fontana; the CityLearn weather file is a milder, probably coastal, site) ---
# Approximate monthly normals of the inland Riverside/Fontana area (daily mean and mean daily
# max - min, all days). A table, not a harmonic: spring is cool ("May gray"), autumn warm.
_MONTHLY_MEAN_TEMP_C = np.array([12.8, 13.3, 15.3, 17.2, 19.7, 23.1, 26.4, 26.7, 24.7, 20.6, 15.8, 12.2])
_MONTHLY_TEMP_RANGE_C = np.array([14.4, 13.3, 13.9, 14.4, 13.9, 16.1, 17.2, 17.8, 17.2, 16.7, 16.1, 14.4])
_T_ANOMALY_SD_C = 2.3
_T_ANOMALY_RHO = 0.75  # day-to-day persistence of weather

# Mean daily clearness per month: the real homes' mean daily PV divided by their best day of the
# month (0.56 in January ... 0.92 in June), nudged so the simulated monthly yield matches theirs.
_MONTHLY_MEAN_CLEARNESS = np.array([0.63, 0.62, 0.90, 0.86, 0.83, 0.91, 0.86, 0.81, 0.75, 0.75, 0.80, 0.67])
_CLEARNESS_MIN = 0.12  # darkest overcast day, relative to clear sky
_CLOUD_RHO_DAILY = 0.5  # day-to-day persistence of cloudiness (real PV: 0.51)
_CLOUD_RHO_INTRADAY = 0.6

# --- PV -----------------------------------------------------------------------------------------
_PV_DERATE = 0.85  # DC->AC, wiring, soiling, mismatch: calibrated to ~1,500 kWh/kW/yr
_PV_TEMP_COEFF_PER_C = -0.004
_PV_CELL_RISE_C_PER_W_M2 = 0.03  # cell temperature = air + 0.03 * POA
_PV_INVERTER_LIMIT_KW_PER_KW = 0.95  # real hourly peaks are 0.70-0.98 kW/kW
_PV_NOISE_SD = 0.03  # per-home, per-interval measurement/shading noise
_ALBEDO = 0.2

# Rare noise spikes are compressed smoothly above a knee towards a ceiling per interval (11 kW;
# the real homes' highest hour is 8.8 kWh): the distribution has no hard flat top.
_LOAD_KNEE_KWH = 3.5
_LOAD_CEILING_KWH = 5.5


# Lighting and plug loads that follow darkness: weight of each half hour when the home is awake.
_OCCUPIED_AWAKE = np.select(
    [np.arange(48) < 12, np.arange(48) < 18, np.arange(48) < 34, np.arange(48) < 46],
    [0.1, 0.7, 0.15, 1.0], default=0.3,
)  # 00-06: asleep, 06-09: morning, 09-17: out or daylight, 17-23: evening, 23-24: late
# Hour-of-day shapes of the seasonal extra load: the real homes' mean July-August (cooling) and
# December-January (heating, indoor living) load minus their April+October load, kWh/h by clock hour.
_SUMMER_EXTRA_SHAPE = np.array([
    0.50, 0.42, 0.30, 0.21, 0.19, 0.12, 0.05, 0.09, 0.15, 0.12, 0.37, 0.77,
    0.95, 1.05, 1.18, 1.27, 1.38, 1.37, 1.32, 1.01, 0.68, 0.75, 0.74, 0.65,
])
_WINTER_EXTRA_SHAPE = np.array([
    0.47, 0.56, 0.58, 0.64, 0.67, 0.71, 0.77, 0.54, 0.57, 0.41, 0.34, 0.37,
    0.32, 0.27, 0.19, 0.14, 0.18, 0.40, 0.57, 0.61, 0.53, 0.52, 0.53, 0.46,
])
_LOAD_NOISE_RHO = 0.6  # half-hour persistence of appliance noise (real hourly residual AR(1) ~0.6)
_DAY_NOISE_RHO = 0.4  # day-to-day persistence of a home's activity level (real: 0.39)
_REFERENCE_SEED = 20160801  # fixed weather of the reference climate the load coefficients use


# ================================================================================================
# small pure helpers
# ================================================================================================


def _linear_recursion(x: np.ndarray, a: float, init: np.ndarray | float, block: int = 24) -> np.ndarray:
    """``y_t = a*y_{t-1} + x_t`` along axis 0, with ``y_{-1} = init``, for 0 < a < 1.

    Within blocks of ``block`` rows the recursion is a rescaled cumulative sum (vectorised over
    all blocks and columns); only the carries between blocks run in a Python loop, so a year of
    30-minute data takes 730 tiny steps. The rescaling by ``a**-j`` loses no precision: each term
    returns to O(1) when multiplied back by ``a**j`` (it only must not overflow: a**-24 is finite).
    """
    t = x.shape[0]
    if t == 0:
        return np.array(x, dtype=float)
    nblocks = -(-t // block)
    pad = nblocks * block - t
    if pad:
        x = np.concatenate([x, np.zeros((pad,) + x.shape[1:])])
    x = x.reshape((nblocks, block) + x.shape[1:])
    j = np.arange(block, dtype=float).reshape((1, block) + (1,) * (x.ndim - 2))
    inner = a**j * np.cumsum(x * a ** (-j), axis=1)
    carry = np.empty((nblocks,) + x.shape[2:])
    prev = np.broadcast_to(np.asarray(init, dtype=float), x.shape[2:])
    a_block = a**block
    for k in range(nblocks):
        carry[k] = prev  # y just before block k
        prev = a_block * prev + inner[k, -1]
    out = inner + a ** (j + 1) * carry[:, None]
    return out.reshape((nblocks * block,) + x.shape[2:])[:t]


def ar1(z: np.ndarray, rho: float) -> np.ndarray:
    """Stationary unit-variance AR(1) along axis 0 from iid standard normals ``z`` of shape (T+1, ...).

    Row 0 of ``z`` is the state before the first output row, so the output has T rows and the
    first k rows depend only on the first k+1 rows of ``z``.
    """
    return _linear_recursion(np.sqrt(1.0 - rho * rho) * z[1:], rho, z[0])


def _nth_sunday(year: int, month: int, n: int) -> pd.Timestamp:
    """The n-th Sunday of a month (n = -1: the last)."""
    days = pd.date_range(f"{year}-{month:02d}-01", periods=calendar.monthrange(year, month)[1], freq="D")
    sundays = days[days.day_of_week == 6]
    return sundays[n if n < 0 else n - 1]


def dst_offset_hours(timestamps: pd.DatetimeIndex) -> np.ndarray:
    """1.0 where US daylight saving time is in effect at a naive clock timestamp, else 0.0.

    2007 on: second Sunday of March to first Sunday of November; before: first Sunday of April
    to last Sunday of October; both switch at 02:00 clock time.
    """
    out = np.zeros(len(timestamps))
    for year in np.unique(timestamps.year):
        year = int(year)
        if year >= 2007:
            start, end = _nth_sunday(year, 3, 2), _nth_sunday(year, 11, 1)
        else:
            start, end = _nth_sunday(year, 4, 1), _nth_sunday(year, 10, -1)
        start, end = start + pd.Timedelta(hours=2), end + pd.Timedelta(hours=2)
        out[(timestamps >= start) & (timestamps < end)] = 1.0
    return out


def solar_position(
    timestamps: pd.DatetimeIndex, lat_deg: float = LATITUDE_DEG, lon_deg: float = LONGITUDE_DEG
) -> tuple[np.ndarray, np.ndarray]:
    """Sun at the middle of each 30-minute interval starting at the naive clock ``timestamps``.

    Returns ``(sun, solar_hour)``: ``(T, 3)`` unit vectors (east, north, up) and ``(T,)`` apparent
    solar time in hours. Spencer (1971) declination and equation of time; US DST.
    """
    mid = timestamps + pd.Timedelta(minutes=15)
    days_in_year = np.where(mid.is_leap_year, 366.0, 365.0)
    g = 2.0 * np.pi * (mid.day_of_year.to_numpy(float) - 1.0) / days_in_year  # day angle
    decl = (
        0.006918 - 0.399912 * np.cos(g) + 0.070257 * np.sin(g) - 0.006758 * np.cos(2 * g)
        + 0.000907 * np.sin(2 * g) - 0.002697 * np.cos(3 * g) + 0.00148 * np.sin(3 * g)
    )
    eot_min = 229.18 * (
        0.000075 + 0.001868 * np.cos(g) - 0.032077 * np.sin(g) - 0.014615 * np.cos(2 * g) - 0.040849 * np.sin(2 * g)
    )
    clock_h = mid.hour.to_numpy(float) + mid.minute.to_numpy(float) / 60.0
    solar_h = clock_h - dst_offset_hours(mid) + (lon_deg - STANDARD_MERIDIAN_DEG) / 15.0 + eot_min / 60.0
    omega = np.deg2rad(15.0 * (solar_h - 12.0))  # hour angle, positive in the afternoon
    phi = np.deg2rad(lat_deg)
    up = np.sin(phi) * np.sin(decl) + np.cos(phi) * np.cos(decl) * np.cos(omega)
    east = -np.cos(decl) * np.sin(omega)
    north = np.cos(phi) * np.sin(decl) - np.sin(phi) * np.cos(decl) * np.cos(omega)
    return np.stack([east, north, up], axis=1), np.mod(solar_h, 24.0)


def panel_normals(tilt_deg: np.ndarray, azimuth_deg: np.ndarray) -> np.ndarray:
    """``(3, N)`` panel normals (east, north, up); azimuth from south, positive towards west."""
    b, g = np.deg2rad(tilt_deg), np.deg2rad(azimuth_deg)
    return np.stack([-np.sin(b) * np.sin(g), -np.sin(b) * np.cos(g), np.cos(b)])


def _periodic_interp(x: np.ndarray, period: float, values: np.ndarray) -> np.ndarray:
    """Linear interpolation of ``values`` given at bin centres of a periodic axis (e.g. hours, months)."""
    n = len(values)
    width = period / n
    xp = (np.arange(-1, n + 1) + 0.5) * width
    fp = np.concatenate([values[-1:], values, values[:1]])
    return np.interp(np.mod(x, period), xp, fp)


# ================================================================================================
# weather (shared by all homes)
# ================================================================================================


def _daily_weather(
    doy: np.ndarray,
    year_len: np.ndarray,
    rng_temperature: np.random.Generator,
    rng_cloud: np.random.Generator,
    columns: tuple[int, ...] = (),
    sign: float = 1.0,
) -> dict[str, np.ndarray]:
    """Day-level weather for days at (mid-day) day-of-year ``doy``; arrays ``(D,) + columns``.

    ``columns`` draws that many independent series side by side (the reference climate uses it);
    ``sign = -1`` negates every normal (antithetic weather).
    """
    d = len(doy)
    expand = (slice(None),) + (None,) * len(columns)
    month_pos = (doy / year_len * 12.0)[expand]  # month centres sit at 0.5, 1.5, ...

    # Clearness: AR(1) latent -> uniform (logistic ~ normal CDF) -> k = 1 - (1-kmin) u^a, skewed
    # towards clear days, with mean 1 - (1-kmin)/(a+1) = the month's mean clearness.
    latent = ar1(sign * rng_cloud.standard_normal((d + 1,) + columns), _CLOUD_RHO_DAILY)
    u = 1.0 / (1.0 + np.exp(-1.702 * latent))
    mean_k = _periodic_interp(month_pos, 12.0, _MONTHLY_MEAN_CLEARNESS)
    shape_a = (1.0 - _CLEARNESS_MIN) / (1.0 - mean_k) - 1.0
    k_day = 1.0 - (1.0 - _CLEARNESS_MIN) * u**shape_a

    # Temperature: monthly normal + persistent anomaly; sunny summer days run hotter.
    normal_c = _periodic_interp(month_pos, 12.0, _MONTHLY_MEAN_TEMP_C)
    summerness = np.clip((normal_c - 12.0) / 15.0, 0.0, 1.0)
    anomaly = _T_ANOMALY_SD_C * ar1(sign * rng_temperature.standard_normal((d + 1,) + columns), _T_ANOMALY_RHO)
    t_mean = normal_c + anomaly + 3.0 * (k_day - mean_k) * summerness
    # The normal range averages clear and cloudy days; clouds narrow it, clear days widen it.
    t_range = _periodic_interp(month_pos, 12.0, _MONTHLY_TEMP_RANGE_C) * (0.45 + 0.55 * k_day) / (0.45 + 0.55 * mean_k)
    return {"k_day": k_day, "t_mean_c": t_mean, "t_range_c": t_range}


def synthetic_weather(
    timestamps: pd.DatetimeIndex, seed: np.random.SeedSequence
) -> dict[str, np.ndarray]:
    """Weather of whole days of 30-minute ``timestamps``; every array is ``(T,)``.

    Keys: ``sun`` (T, 3), ``cos_zenith``, ``ghi_w_per_m2``, ``dhi_w_per_m2``, ``dni_w_per_m2``,
    ``temperature_c``, ``daily_mean_temperature_c`` (the day's mean, constant within a day),
    ``clearness``.
    """
    # One stream per random series, each drawn once, so a shorter series is a prefix of a longer one.
    rng_temperature, rng_cloud_daily, rng_cloud_intraday = (np.random.default_rng(s) for s in seed.spawn(3))
    t = len(timestamps)
    days = t // INTERVALS_PER_DAY
    sun, solar_h = solar_position(timestamps)
    cos_z = sun[:, 2]
    # Daily values run one day past the end, so interpolating the last evening needs no edge rule.
    day_starts = pd.date_range(timestamps[0], periods=days + 1, freq="D")
    daily = _daily_weather(
        day_starts.day_of_year.to_numpy(float) - 0.5,
        np.where(day_starts.is_leap_year, 366.0, 365.0),
        rng_temperature,
        rng_cloud_daily,
    )

    # Intra-day clearness: broken clouds make middling days flicker the most.
    wiggle = ar1(rng_cloud_intraday.standard_normal(t + 1), _CLOUD_RHO_INTRADAY)
    k_rep = np.repeat(daily["k_day"][:days], INTERVALS_PER_DAY)
    k = np.clip(k_rep + 1.2 * k_rep * (1.0 - k_rep) * wiggle, 0.05, 1.0)

    # Haurwitz clear sky; direct normal written without dividing by cos(z).
    up = cos_z > 0.0
    inv_cz = np.where(up, 1.0 / np.where(up, cos_z, 1.0), 0.0)
    dni_clear = np.where(up, 1098.0 * np.exp(-0.057 * inv_cz), 0.0)
    ghi = dni_clear * np.clip(cos_z, 0.0, None) * k
    diffuse_fraction = np.clip(0.15 + 0.85 * (1.0 - k) / 0.7, 0.15, 1.0)  # ~0.15 clear, 1 overcast
    dhi = ghi * diffuse_fraction
    dni = dni_clear * k * (1.0 - diffuse_fraction)

    # Hourly temperature: daily mean and range interpolated through day centres (no jump at
    # midnight), with an asymmetric cycle in solar time: minimum at 06:00, maximum at 15:00.
    x = (np.arange(t) + 0.5) / INTERVALS_PER_DAY
    centres = np.arange(days + 1) + 0.5
    t_mean_i = np.interp(x, centres, daily["t_mean_c"])
    t_range_i = np.interp(x, centres, daily["t_range_c"])
    rising = (solar_h >= 6.0) & (solar_h < 15.0)
    diurnal = np.where(
        rising, -np.cos(np.pi * (solar_h - 6.0) / 9.0), np.cos(np.pi * np.mod(solar_h - 15.0, 24.0) / 15.0)
    )
    return {
        "sun": sun,
        "cos_zenith": cos_z,
        "ghi_w_per_m2": ghi,
        "dhi_w_per_m2": dhi,
        "dni_w_per_m2": dni,
        "temperature_c": t_mean_i + 0.5 * t_range_i * diurnal,
        "daily_mean_temperature_c": np.repeat(daily["t_mean_c"][:days], INTERVALS_PER_DAY),
        "clearness": k,
    }


def _awake_in_dark(cos_zenith: np.ndarray) -> np.ndarray:
    """``(T,)`` weight of lighting load: occupied-and-awake weight where the sun is below ~3 degrees."""
    slot = np.arange(len(cos_zenith)) % INTERVALS_PER_DAY
    return _OCCUPIED_AWAKE[slot] * (cos_zenith < 0.052)


def mean_excess(x: np.ndarray, thresholds: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """``mean(w * max(x - g, 0))`` for every threshold ``g``, via one sort (no (T, G) array)."""
    w = np.ones_like(x) if weights is None else weights
    order = np.argsort(x)
    xs, ws = x[order], w[order]
    suffix_w = np.append(np.cumsum(ws[::-1])[::-1], 0.0)  # suffix_w[i] = sum(ws[i:])
    suffix_wx = np.append(np.cumsum((ws * xs)[::-1])[::-1], 0.0)
    idx = np.searchsorted(xs, thresholds, side="right")
    return (suffix_wx[idx] - thresholds * suffix_w[idx]) / len(xs)


def mean_deficit(x: np.ndarray, thresholds: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """``mean(w * max(g - x, 0))`` for every threshold ``g``."""
    w = np.ones_like(x) if weights is None else weights
    return thresholds * w.mean() - (w * x).mean() + mean_excess(x, thresholds, w)


def _hour_weights(t: int, hourly_shape: np.ndarray) -> np.ndarray:
    """``(T,)`` a measured 24-hour shape on the half-hour grid, normalised to mean 1 over a day."""
    slot_centre_h = (np.arange(INTERVALS_PER_DAY) + 0.5) * 24.0 / INTERVALS_PER_DAY
    shape = _periodic_interp(slot_centre_h, 24.0, hourly_shape)
    return (shape / shape.mean())[np.arange(t) % INTERVALS_PER_DAY]


@lru_cache(maxsize=1)
def _reference_climate() -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Expected degree-days above/below a grid of balance points, and the lighting weight, per interval.

    The load coefficients are normalised by these (not by the generated year), so a home's expected
    annual energy equals its draw and a shorter ``num_days`` gives the same first days. Heating and
    cooling use the day's mean temperature, so the expectation only needs daily weather: 500
    independent model years side by side plus their antithetic mirror (~0.15 s, within ~1-2%).
    """
    days, years = 365, 500
    doy = np.arange(days) + 0.5
    year_len = np.full(days, 365.0)
    t_day = []
    for sign in (1.0, -1.0):
        r_t, r_c = (np.random.default_rng(s) for s in np.random.SeedSequence(_REFERENCE_SEED).spawn(2))
        t_day.append(_daily_weather(doy, year_len, r_t, r_c, columns=(years,), sign=sign)["t_mean_c"].ravel())
    t_all = np.concatenate(t_day)
    grid = np.arange(5.0, 35.01, 0.25)
    cooling = mean_excess(t_all, grid)
    heating = mean_deficit(t_all, grid)
    # Lighting depends only on the sun: one fixed year is exact enough.
    ts = pd.date_range("2001-01-01", periods=days * INTERVALS_PER_DAY, freq="30min", unit="ns")
    lighting = float(_awake_in_dark(solar_position(ts)[0][:, 2]).mean())
    return grid, cooling, heating, lighting


# ================================================================================================
# households
# ================================================================================================


def _household_params(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """Per-home characteristics, each ``(N,)``. One (N, K) uniform draw: home i's traits do not depend on N."""
    u = rng.random((n, 22))
    lo, hi = _ANNUAL_LOAD_RANGE_KWH
    cooling_share = 0.12 + 0.24 * u[:, 1]
    heating_share = 0.06 + 0.16 * u[:, 2]
    lighting_share = 0.03 + 0.05 * u[:, 3]
    return {
        "annual_load_kwh": lo + (hi - lo) * u[:, 0],
        "cooling_share": cooling_share,
        "heating_share": heating_share,
        "lighting_share": lighting_share,
        "base_share": 1.0 - cooling_share - heating_share - lighting_share,
        # balance points of the daily mean temperature
        "cooling_setpoint_c": 16.0 + 4.0 * u[:, 4],
        "heating_setpoint_c": 14.5 + 3.0 * u[:, 5],
        "shape_shift_h": 3.0 * (u[:, 6] - 0.5),  # earlier or later routines, +-1.5 h
        "midday_weight": -0.3 + 1.0 * u[:, 7],  # < 0: out all day; > 0: at home
        # a home's own habits (pool pump, EV, late nights): 3 daily harmonics of random phase
        "habit_amplitude": 0.20 + 0.25 * u[:, 16:19],
        "habit_phase": 2.0 * np.pi * u[:, 19:22],
        "half_hour_noise_sd": 0.15 + 0.25 * u[:, 8],
        "daily_noise_sd": 0.10 + 0.18 * u[:, 9],
        # 3-6 kW, triangular around 4.5 kW, in 0.1 kW steps (real homes: 4 or 5 kW)
        "pv_capacity_kw": np.round(3.0 + 1.5 * (u[:, 10] + u[:, 11]), 1),
        "pv_tilt_deg": 10.0 + 20.0 * u[:, 12],
        "pv_azimuth_deg": 60.0 * (u[:, 13] + u[:, 14] - 1.0),  # south +-60, mostly near south
        "pv_performance": 0.86 + 0.26 * u[:, 15],  # shading, soiling, module quality
    }


def _base_shapes(params: dict[str, np.ndarray]) -> np.ndarray:
    """``(2, 48, N)`` per-home base-load shapes (weekday, weekend); weekday mean 1, weekend ``_WEEKEND_LEVEL``."""
    slot_centre_h = (np.arange(INTERVALS_PER_DAY) + 0.5) * 24.0 / INTERVALS_PER_DAY
    x = slot_centre_h[:, None] - params["shape_shift_h"][None, :]
    midday_bump = np.exp(-0.5 * ((slot_centre_h - 13.0) / 3.0) ** 2)[:, None]
    k = np.arange(1, 4)
    angle = 2.0 * np.pi * k[None, :, None] * slot_centre_h[:, None, None] / 24.0 + params["habit_phase"].T[None]
    habits = np.exp((params["habit_amplitude"].T[None] * np.cos(angle)).sum(axis=1))  # (48, N)
    out = []
    for table, level in ((_BASE_SHAPE_WEEKDAY, 1.0), (_BASE_SHAPE_WEEKEND, _WEEKEND_LEVEL)):
        s = _periodic_interp(x, 24.0, table) * (1.0 + params["midday_weight"][None, :] * midday_bump) * habits
        out.append(level * s / s.mean(axis=0, keepdims=True))
    return np.stack(out)


def _load_kwh(
    timestamps: pd.DatetimeIndex,
    weather: dict[str, np.ndarray],
    params: dict[str, np.ndarray],
    rng_day: np.random.Generator,
    rng_half_hour: np.random.Generator,
) -> np.ndarray:
    """``(T, N)`` household load, kWh per interval."""
    t = len(timestamps)
    n = len(params["annual_load_kwh"])
    days = t // INTERVALS_PER_DAY
    intervals_per_year = _DAYS_PER_YEAR * INTERVALS_PER_DAY
    grid, ref_cooling, ref_heating, ref_lighting = _reference_climate()
    annual = params["annual_load_kwh"]

    # Coefficients so each component's expected annual energy is its share of the home's draw.
    mean_shape = (5.0 + 2.0 * _WEEKEND_LEVEL) / 7.0
    base_kwh = params["base_share"] * annual / (intervals_per_year * mean_shape)
    lighting_kwh = params["lighting_share"] * annual / (intervals_per_year * ref_lighting)
    cooling_kwh_per_c = params["cooling_share"] * annual / (
        intervals_per_year * np.interp(params["cooling_setpoint_c"], grid, ref_cooling)
    )
    heating_kwh_per_c = params["heating_share"] * annual / (
        intervals_per_year * np.interp(params["heating_setpoint_c"], grid, ref_heating)
    )

    weekend = (timestamps[::INTERVALS_PER_DAY].day_of_week >= 5).astype(int)
    load = _base_shapes(params)[weekend].reshape(t, n) * base_kwh
    load += np.outer(_awake_in_dark(weather["cos_zenith"]), lighting_kwh)
    # Degree-day method: a day's cooling (heating) energy grows with its mean temperature above
    # (below) the home's balance point; its hour-of-day shape is the one measured in the real homes.
    t_day = weather["daily_mean_temperature_c"][:, None]
    cooling_w = _hour_weights(t, _SUMMER_EXTRA_SHAPE)[:, None]
    heating_w = _hour_weights(t, _WINTER_EXTRA_SHAPE)[:, None]
    load += np.maximum(t_day - params["cooling_setpoint_c"], 0.0) * (cooling_w * cooling_kwh_per_c)
    load += np.maximum(params["heating_setpoint_c"] - t_day, 0.0) * (heating_w * heating_kwh_per_c)

    # Activity: a persistent day-level factor and spiky, persistent half-hour appliance noise.
    # Both are mean-one lognormals, summed in log space so only one exp runs over (T, N).
    day_sd, hh_sd = params["daily_noise_sd"], params["half_hour_noise_sd"]
    day_log = day_sd * ar1(rng_day.standard_normal((days + 1, n)), _DAY_NOISE_RHO) - 0.5 * (day_sd**2 + hh_sd**2)
    log_factor = ar1(rng_half_hour.standard_normal((t + 1, n)), _LOAD_NOISE_RHO)
    log_factor *= hh_sd
    log_factor += np.repeat(day_log, INTERVALS_PER_DAY, axis=0)
    load *= np.exp(log_factor, out=log_factor)
    high = load > _LOAD_KNEE_KWH  # ~0.1% of intervals
    span = _LOAD_CEILING_KWH - _LOAD_KNEE_KWH
    load[high] = _LOAD_KNEE_KWH + span * np.tanh((load[high] - _LOAD_KNEE_KWH) / span)
    return load


def _pv_kwh(weather: dict[str, np.ndarray], params: dict[str, np.ndarray], rng_pv: np.random.Generator) -> np.ndarray:
    """``(T, N)`` AC PV generation, kWh per interval."""
    normals = panel_normals(params["pv_tilt_deg"], params["pv_azimuth_deg"])
    cos_incidence = np.clip(weather["sun"] @ normals, 0.0, None)  # (T, N) in one matrix product
    tilt = np.deg2rad(params["pv_tilt_deg"])
    poa = weather["dni_w_per_m2"][:, None] * cos_incidence
    poa += np.outer(weather["dhi_w_per_m2"], 0.5 * (1.0 + np.cos(tilt)))  # isotropic sky
    poa += np.outer(weather["ghi_w_per_m2"] * _ALBEDO, 0.5 * (1.0 - np.cos(tilt)))  # ground
    cell_c = weather["temperature_c"][:, None] + _PV_CELL_RISE_C_PER_W_M2 * poa
    kw_per_kw = poa / 1000.0 * _PV_DERATE * params["pv_performance"] * (1.0 + _PV_TEMP_COEFF_PER_C * (cell_c - 25.0))
    noise = rng_pv.standard_normal(poa.shape)
    noise *= _PV_NOISE_SD
    noise += 1.0  # small, so a linear factor is as good as a lognormal and avoids an exp over (T, N)
    kw_per_kw *= noise
    np.clip(kw_per_kw, 0.0, _PV_INVERTER_LIMIT_KW_PER_KW, out=kw_per_kw)
    return kw_per_kw * (params["pv_capacity_kw"] * INTERVAL_HOURS)


# ================================================================================================
# public
# ================================================================================================


def generate_synthetic(num_households: int = 10, year: int = 2025, seed: int = 0, num_days: int | None = None) -> Dataset:
    """A synthetic community: 30-minute load and PV of ``num_households`` homes.

    Args:
        num_households: homes, ``household_0`` ... ``household_{N-1}``.
        year: calendar year; the data start at midnight on 1 January (naive local clock time).
        seed: seed of a numpy ``Generator``; the same arguments give identical data.
        num_days: days to generate (default: the whole year, 365 or 366). The first ``k`` days do
            not depend on ``num_days``.

    Returns:
        A :class:`Dataset` with ``load_kwh`` and ``pv_kwh`` (kWh per interval), ``pv_capacity_kw``,
        ``temperature_c`` (°C) and ``irradiance_w_per_m2`` (global horizontal, W/m²).
    """
    if num_households < 1:
        raise ValueError(f"num_households must be >= 1, got {num_households}")
    days_in_year = 366 if calendar.isleap(year) else 365
    days = days_in_year if num_days is None else int(num_days)
    if days < 1:
        raise ValueError(f"num_days must be >= 1, got {num_days}")
    timestamps = pd.date_range(f"{year}-01-01", periods=days * INTERVALS_PER_DAY, freq="30min", unit="ns")
    # Independent streams per component, each drawn once and row-major (time first), so the first
    # k days do not depend on num_days and home i's traits do not depend on num_households.
    weather_seed, *streams = np.random.SeedSequence(seed).spawn(5)
    rng_params, rng_day, rng_hh, rng_pv = (np.random.default_rng(s) for s in streams)
    params = _household_params(rng_params, num_households)
    weather = synthetic_weather(timestamps, weather_seed)
    load = _load_kwh(timestamps, weather, params, rng_day, rng_hh)
    pv = _pv_kwh(weather, params, rng_pv)
    name = f"synthetic(n={num_households}, year={year}, seed={seed}" + ("" if num_days is None else f", days={days}") + ")"
    return Dataset(
        name=name,
        timestamps=timestamps,
        load_kwh=load,
        pv_kwh=pv,
        household_ids=tuple(f"household_{i}" for i in range(num_households)),
        pv_capacity_kw=params["pv_capacity_kw"],
        temperature_c=weather["temperature_c"],
        irradiance_w_per_m2=weather["ghi_w_per_m2"],
    )
