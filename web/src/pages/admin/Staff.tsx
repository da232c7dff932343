// The back office's frame: staff only, its own navigation.
import type { ReactNode } from "react";
import { NavLink } from "react-router-dom";
import { useAuth } from "../../auth";
import { SignedIn } from "../common";

export function Staff({ title, children }: { title: string; children: ReactNode }) {
  return (
    <>
      <nav aria-label="Back office" className="subnav">
        <NavLink to="/admin" end>
          Orders
        </NavLink>
        <NavLink to="/admin/products">Products</NavLink>
        <NavLink to="/admin/import">Import</NavLink>
        <NavLink to="/admin/health">Health</NavLink>
      </nav>
      <h1>{title}</h1>
      <SignedIn>
        <AdminOnly>{children}</AdminOnly>
      </SignedIn>
    </>
  );
}

function AdminOnly({ children }: { children: ReactNode }) {
  const { account } = useAuth();
  if (account?.role !== "admin") {
    return <p role="alert">The back office is for the shop's administrators.</p>;
  }
  return <>{children}</>;
}
