"""Parameter sensitivities of an ODE solution, by forward-mode differentiation of RK4.

The Lotka-Volterra predator-prey model
    prey' = a prey - b prey pred,    pred' = d prey pred - g pred
is integrated with classical fourth-order Runge-Kutta, each step one iteration of an
`fx.scan` that also records the trajectory. `fx.jacfwd` of the map
theta = (a, b, d, g) -> state at time T pushes four tangents through the same loop,
giving the 2 x 4 sensitivity matrix d state(T) / d theta (what forward sensitivity
equations would give, without deriving them by hand). We compile it with `fx.jit` and
check it against central finite differences of a plain numpy RK4.

Run: python examples/ode_sensitivity.py
"""
import numpy as np

import fxgrad as fx
import fxgrad.numpy as fnp

DT, STEPS = 0.05, 100
Y0 = np.array([1.0, 0.5])


def lotka_volterra(y, theta):
    a, b, d, g = theta[0], theta[1], theta[2], theta[3]
    prey, pred = y[0], y[1]
    return fnp.stack([a * prey - b * prey * pred, d * prey * pred - g * pred])


def rk4_step(y, theta, dt):
    k1 = lotka_volterra(y, theta)
    k2 = lotka_volterra(y + 0.5 * dt * k1, theta)
    k3 = lotka_volterra(y + 0.5 * dt * k2, theta)
    k4 = lotka_volterra(y + dt * k3, theta)
    return y + dt / 6.0 * (k1 + 2.0 * k2 + 2.0 * k3 + k4)


def trajectory(theta):
    def step(y, _):
        y = rk4_step(y, theta, DT)
        return y, y
    return fx.scan(step, fnp.asarray(Y0), None, length=STEPS)


def final_state(theta):
    return trajectory(theta)[0]


def final_state_numpy(theta):
    def field(y):
        return np.array([theta[0] * y[0] - theta[1] * y[0] * y[1],
                         theta[2] * y[0] * y[1] - theta[3] * y[1]])
    y = Y0.copy()
    for _ in range(STEPS):
        k1 = field(y)
        k2 = field(y + 0.5 * DT * k1)
        k3 = field(y + 0.5 * DT * k2)
        k4 = field(y + DT * k3)
        y = y + DT / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4)
    return y


def finite_difference_jacobian(theta, eps=1e-6):
    columns = []
    for i in range(len(theta)):
        bump = np.zeros_like(theta)
        bump[i] = eps
        plus, minus = final_state_numpy(theta + bump), final_state_numpy(theta - bump)
        columns.append((plus - minus) / (2 * eps))
    return np.stack(columns, axis=1)


def main():
    theta = np.array([1.0, 0.8, 0.6, 0.9])
    y_T, path = trajectory(theta)
    print(f"state at T = {DT * STEPS}: prey {y_T[0]:.5f}, predators {y_T[1]:.5f}"
          f" (trajectory shape {path.shape})")
    assert np.allclose(y_T, final_state_numpy(theta))

    sensitivity = fx.jit(fx.jacfwd(final_state))(theta)
    expected = finite_difference_jacobian(theta)
    print("d state(T) / d (a, b, d, g) by jacfwd through the RK4 scan:\n", sensitivity)
    print("central finite differences:\n", expected)
    assert sensitivity.shape == (2, 4)
    assert np.allclose(sensitivity, expected, rtol=1e-6, atol=1e-8)
    print(f"max |jacfwd - finite difference| = {np.abs(sensitivity - expected).max():.2e}")


if __name__ == "__main__":
    main()
