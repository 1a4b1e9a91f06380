import { type CanActivate, type ExecutionContext, Injectable } from "@nestjs/common";
import { RpcException } from "@nestjs/microservices";
import { status, type Metadata } from "@grpc/grpc-js";
import { TokenVerifier } from "./token-verifier.js";

const ROLES = ["user", "publisher", "admin"];

/** Bearer token from the call's metadata, verified; any signed-in role may count (presence's access table). */
@Injectable()
export class AuthGuard implements CanActivate {
  constructor(private readonly verifier: TokenVerifier) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const metadata = context.switchToRpc().getContext<Metadata>();
    const header = metadata.get("authorization")[0];
    const token = typeof header === "string" && header.startsWith("Bearer ") ? header.slice(7) : undefined;
    if (!token) throw new RpcException({ code: status.UNAUTHENTICATED, message: "missing bearer token" });
    let roles: string[];
    try {
      roles = (await this.verifier.verify(token)).roles;
    } catch {
      throw new RpcException({ code: status.UNAUTHENTICATED, message: "invalid token" });
    }
    if (!roles.some((role) => ROLES.includes(role))) throw new RpcException({ code: status.PERMISSION_DENIED, message: "no role may call this" });
    return true;
  }
}
