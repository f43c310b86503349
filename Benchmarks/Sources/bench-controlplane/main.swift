import MeshControlPlane
import XDSClient
import XDSServer
import IdentityServices
import MeshIdentity
import Yams
import GRPCCore
import GRPCNIOTransportHTTP2
print("stub")
