import { useEffect, useRef } from "react";
import { Link, NavLink, Route, Routes, useLocation } from "react-router-dom";
import { useAuth } from "./auth";
import { CartPage } from "./pages/Cart";
import { Catalog } from "./pages/Catalog";
import { Checkout } from "./pages/Checkout";
import { Login, Register } from "./pages/Account";
import { ForgotPassword, ResetPassword, UnverifiedNotice, VerifyEmail } from "./pages/Links";
import { NotFound } from "./pages/NotFound";
import { OrderPage } from "./pages/Order";
import { OrderHistory } from "./pages/Orders";
import { ProductPage } from "./pages/Product";
import { AdminHealth } from "./pages/admin/Health";
import { AdminImport } from "./pages/admin/Import";
import { AdminOrder } from "./pages/admin/OrderDetail";
import { AdminOrders } from "./pages/admin/Orders";
import { AdminProducts } from "./pages/admin/Products";

export function App() {
  const { account, logout } = useAuth();
  const location = useLocation();
  const main = useRef<HTMLElement>(null);

  // A new page moves the focus to its content, as a page load would, for keyboard and screen
  // reader users.
  useEffect(() => {
    main.current?.focus();
  }, [location.pathname]);

  return (
    <>
      <a className="skip" href="#main">
        Skip to content
      </a>
      <header className="top">
        <Link to="/" className="brand">
          Shop
        </Link>
        <nav aria-label="Main">
          <NavLink to="/">Catalog</NavLink>
          <NavLink to="/cart">Cart</NavLink>
          {account ? (
            <>
              <NavLink to="/orders">Orders</NavLink>
              {account.role === "admin" && <NavLink to="/admin">Back office</NavLink>}
              <button type="button" className="link" onClick={logout}>
                Log out
              </button>
            </>
          ) : (
            <>
              <NavLink to="/login">Log in</NavLink>
              <NavLink to="/register">Register</NavLink>
            </>
          )}
        </nav>
      </header>
      <main id="main" ref={main} tabIndex={-1}>
        <UnverifiedNotice />
        <Routes>
          <Route path="/" element={<Catalog />} />
          <Route path="/products/:productId" element={<ProductPage />} />
          <Route path="/cart" element={<CartPage />} />
          <Route path="/checkout" element={<Checkout />} />
          <Route path="/orders" element={<OrderHistory />} />
          <Route path="/orders/:orderId" element={<OrderPage />} />
          <Route path="/login" element={<Login />} />
          <Route path="/register" element={<Register />} />
          <Route path="/verify-email" element={<VerifyEmail />} />
          <Route path="/forgot-password" element={<ForgotPassword />} />
          <Route path="/reset-password" element={<ResetPassword />} />
          <Route path="/admin" element={<AdminOrders />} />
          <Route path="/admin/orders/:orderId" element={<AdminOrder />} />
          <Route path="/admin/products" element={<AdminProducts />} />
          <Route path="/admin/import" element={<AdminImport />} />
          <Route path="/admin/health" element={<AdminHealth />} />
          <Route path="*" element={<NotFound />} />
        </Routes>
      </main>
    </>
  );
}
